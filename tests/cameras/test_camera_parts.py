"""The pure parts of the camera sources: URL redaction, the ffmpeg command, splitting its JPEG stream."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gate_service.cameras.ffmpeg import CameraCommand, JpegSplitter
from gate_service.cameras.redact import redact_text, redact_url
from gate_service.cameras.source import segment_start


def test_credentials_never_survive_redaction():
    assert redact_url("rtsp://admin:Pa55@10.0.0.5:554/Streaming/Channels/101") == \
        "rtsp://***@10.0.0.5:554/Streaming/Channels/101"
    assert redact_url("rtsp://10.0.0.5/live?user=admin&password=x&channel=1") == \
        "rtsp://10.0.0.5/live?user=***&password=***&channel=1"
    assert redact_url("rtsp://10.0.0.5/cam") == "rtsp://10.0.0.5/cam"
    line = "[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized rtsp://admin:Pa55@10.0.0.5/x: Server returned 401"
    assert "Pa55" not in redact_text(line) and "rtsp://***@10.0.0.5/x" in redact_text(line)


def test_the_command_copies_the_record_stream_and_decodes_only_for_the_reader(tmp_path: Path):
    both = CameraCommand("rtsp://h/c", 5, tmp_path, segment_seconds=600).argv()
    copy_at = both.index("-c:v")
    assert both[copy_at + 1] == "copy" and "segment" in both and "-segment_atclocktime" in both
    assert "fps=5" in " ".join(both) and both[-1] == "pipe:1"
    read_only = CameraCommand("rtsp://h/c", 2, None).argv()
    assert "segment" not in read_only and "copy" not in read_only
    record_only = CameraCommand("rtsp://h/c", None, tmp_path).argv()
    assert "pipe:1" not in record_only and "mjpeg" not in record_only


def test_jpegs_come_out_whole_however_the_pipe_cuts_them():
    images = [np.full((40, 60, 3), i * 40, np.uint8) for i in range(4)]
    blobs = [cv2.imencode(".jpg", im)[1].tobytes() for im in images]
    stream = b"".join(blobs)
    splitter = JpegSplitter()
    out = []
    for i in range(0, len(stream), 7):  # 7-byte reads: markers split across reads
        out += splitter.feed(stream[i:i + 7])
    assert out == blobs


def test_segment_names_carry_their_utc_start():
    assert segment_start(Path("cam-20250106T020000Z.mp4")).isoformat() == "2025-01-06T02:00:00+00:00"
    assert segment_start(Path("segments.csv")) is None
