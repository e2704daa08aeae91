"""The ffmpeg command line of one camera, and splitting its JPEG output into frames. Pure: no I/O.

One ffmpeg process per camera, one RTSP connection, up to two outputs:

- ``record``: the camera's video packets copied into MP4 segments (``-c copy -f segment``), cut on the wall
  clock like the kiosk recorder's segments, named by their UTC start. Fragmented MP4 (``frag_keyframe``): a
  segment cut short by a crash or a lost camera is still playable up to its last fragment.
- ``read``: the stream decoded, reduced to ``read_fps`` and scaled to at most 1280 px wide, as JPEGs on stdout
  (the same bytes a kiosk would post: the snapshot of a passage is one of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SEGMENT_PATTERN = "cam-%Y%m%dT%H%M%SZ.mp4"
READ_WIDTH = 1280
SOI, EOI = b"\xff\xd8", b"\xff\xd9"


@dataclass(frozen=True)
class CameraCommand:
    url: str
    read_fps: float | None  # None: no read output
    segment_dir: Path | None  # None: no record output
    segment_seconds: float = 600.0
    timeout_seconds: float = 5.0
    transport: str = "tcp"

    def argv(self, ffmpeg: str = "ffmpeg") -> list[str]:
        if self.read_fps is None and self.segment_dir is None:
            raise ValueError("a camera needs the read or the record role")
        args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning",
                "-rtsp_transport", self.transport,
                # Socket I/O timeout (µs): a camera that stops sending ends the process, which is then restarted.
                "-timeout", str(int(self.timeout_seconds * 1_000_000)),
                "-fflags", "+genpts", "-use_wallclock_as_timestamps", "0",
                "-i", self.url]
        if self.segment_dir is not None:
            args += ["-map", "0:v:0", "-c:v", "copy", "-an",
                     "-f", "segment", "-segment_time", f"{self.segment_seconds:g}",
                     "-segment_atclocktime", "1", "-reset_timestamps", "1", "-strftime", "1",
                     "-segment_format", "mp4",
                     "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
                     "-segment_list", str(self.segment_dir / "segments.csv"), "-segment_list_type", "csv",
                     str(self.segment_dir / SEGMENT_PATTERN)]
        if self.read_fps is not None:
            args += ["-map", "0:v:0", "-an",
                     "-vf", f"fps={self.read_fps:g},scale='min({READ_WIDTH},iw)':-2",
                     "-c:v", "mjpeg", "-q:v", "3", "-f", "image2pipe", "pipe:1"]
        return args


class JpegSplitter:
    """Bytes of concatenated JPEGs (ffmpeg's image2pipe) in, whole JPEGs out.

    In a JPEG's entropy-coded data 0xFF is always stuffed (FF 00), so FF D9 only ever ends the image; ffmpeg's
    MJPEG encoder writes no embedded thumbnails that would nest another pair.
    """

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self._buffer = bytearray()
        self.max_bytes = max_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while True:
            start = self._buffer.find(SOI)
            if start < 0:
                # Keep a trailing FF: it may be the first half of the next image's start marker.
                keep = 1 if self._buffer.endswith(b"\xff") else 0
                del self._buffer[:len(self._buffer) - keep]
                break
            end = self._buffer.find(EOI, start + 2)
            if end < 0:
                if start:
                    del self._buffer[:start]
                if len(self._buffer) > self.max_bytes:  # no end in sight: garbage, start over
                    self._buffer.clear()
                break
            out.append(bytes(self._buffer[start:end + 2]))
            del self._buffer[:end + 2]
        return out
