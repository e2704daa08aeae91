"""A real RTSP camera on this machine: GStreamer's RTSP server (Debian's python3-gi) looping an MP4 made from
real gate photos (EasyPR, used for evaluation only, as elsewhere in the tests) or synthetic plates where that
folder is absent. Skipped with a reason when GStreamer's RTSP server or ffmpeg is not installed
(scripts/test installs them when it runs as root)."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import EASYPR

HERE = Path(__file__).parent
SYSTEM_PYTHON = "/usr/bin/python3"
SIZE = (1280, 720)
FPS = 25
# Photos the reader reads right at this size (checked once, as evaluation): three vehicles, then the lane empty.
VEHICLES = ("shared_0001.jpg", "shared_0005.jpg", "shared_0016.jpg")
EMPTY_SECONDS, VEHICLE_SECONDS = 3, 4


def _missing() -> str | None:
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        return "ffmpeg/ffprobe not installed (apt-get install ffmpeg; scripts/test does it as root)"
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (GStreamer's RTSP server runs with Debian's python3-gi)"
    check = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', "
         "'1.0'); from gi.repository import Gst, GstRtspServer; Gst.init(None); "
         "assert all(Gst.ElementFactory.find(n) for n in ('multifilesrc', 'qtdemux', 'h264parse', 'rtph264pay', "
         "'h265parse', 'rtph265pay'))"], capture_output=True, timeout=60, check=False)
    if check.returncode != 0:
        return ("GStreamer's RTSP server is not installed (python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-good/-bad/-ugly; scripts/test installs them as root)")
    return None


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    reason = _missing()
    if reason:
        pytest.skip(reason)


def _canvas(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = min(SIZE[0] / width, SIZE[1] / height)
    image = cv2.resize(image, (int(width * scale) // 2 * 2, int(height * scale) // 2 * 2))
    out = background.copy()
    y, x = (SIZE[1] - image.shape[0]) // 2, (SIZE[0] - image.shape[1]) // 2
    out[y:y + image.shape[0], x:x + image.shape[1]] = image
    return out


@dataclass(frozen=True)
class GateVideo:
    path: Path
    codec: str
    plates: tuple[str, ...]  # in the order they drive through
    seconds: float


def scenes() -> tuple[list[tuple[np.ndarray, float]], tuple[str, ...]]:
    """(picture, seconds) of a lane: empty, a vehicle, empty, ... — and the vehicles' plates."""
    rng = np.random.default_rng(7)
    background = np.clip(rng.normal(95, 6, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)  # road surface
    labels = {}
    if (EASYPR / "labels.csv").exists():
        with open(EASYPR / "labels.csv", encoding="utf-8") as fh:
            labels = {row["file"]: row["plate"] for row in csv.DictReader(fh)}
    if all((EASYPR / name).exists() for name in VEHICLES) and labels:
        pictures = [(cv2.imread(str(EASYPR / name)), labels[name]) for name in VEHICLES]
    else:
        from plate_reader.synth import synthetic_set

        pictures = [(s.image, s.plate) for s in synthetic_set(per_kind=1)[:3]]
    out: list[tuple[np.ndarray, float]] = [(background, EMPTY_SECONDS)]
    for image, _ in pictures:
        out += [(_canvas(image, background), VEHICLE_SECONDS), (background, EMPTY_SECONDS)]
    return out, tuple(plate for _, plate in pictures)


def make_video(path: Path, codec: str) -> GateVideo:
    """Encode the lane as a camera would: 25 fps, a keyframe a second, no B-frames (what IP cameras send)."""
    parts, plates = scenes()
    encoder = (["-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", str(FPS), "-profile:v", "main"]
               if codec == "h264" else
               ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", f"bframes=0:keyint={FPS}:log-level=error",
                "-tag:v", "hvc1"])
    process = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
         "-s", f"{SIZE[0]}x{SIZE[1]}", "-r", str(FPS), "-i", "-", *encoder, "-pix_fmt", "yuv420p",
         "-b:v", "2M", "-movflags", "+faststart", str(path)], stdin=subprocess.PIPE)
    assert process.stdin is not None
    for picture, seconds in parts:
        data = picture.tobytes()
        for _ in range(int(seconds * FPS)):
            process.stdin.write(data)
    process.stdin.close()
    assert process.wait(timeout=600) == 0
    return GateVideo(path, codec, plates, sum(s for _, s in parts))


@pytest.fixture(scope="session")
def h264_video(rtsp_available, tmp_path_factory) -> GateVideo:
    return make_video(tmp_path_factory.mktemp("cam") / "lane-h264.mp4", "h264")


@pytest.fixture(scope="session")
def h265_video(rtsp_available, tmp_path_factory) -> GateVideo:
    return make_video(tmp_path_factory.mktemp("cam") / "lane-h265.mp4", "h265")


class RtspServer:
    """GStreamer's RTSP server as a child process; ``kill`` is a camera losing power, ``start`` it coming back."""

    def __init__(self, video: GateVideo, log_dir: Path) -> None:
        self.video = video
        self.log_dir = log_dir
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> RtspServer:
        log = open(self.log_dir / "rtsp-server.log", "a")
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(self.video.path), self.video.codec, str(self.port)],
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("ready "):
                self.port = int(line.split(":")[2].split("/")[0])
                return self
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"the RTSP server did not start: {(self.log_dir / 'rtsp-server.log').read_text()[-1000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def rtsp_server(rtsp_available, tmp_path):
    made: list[RtspServer] = []

    def start(video: GateVideo) -> RtspServer:
        made.append(RtspServer(video, tmp_path).start())
        return made[-1]

    yield start
    for server in made:
        server.kill()


def ffprobe_stream(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,level,width,height,pix_fmt", "-of", "default=nw=1", str(path)],
        capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in out.stdout.strip().splitlines())


def packet_sizes(path: Path) -> list[tuple[int, bool]]:
    """(size, keyframe) of every video packet, in order."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size,flags",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, timeout=120, check=True)
    rows = []
    for line in out.stdout.strip().splitlines():
        size, flags = line.split(",")[:2]
        rows.append((int(size), "K" in flags))
    return rows
