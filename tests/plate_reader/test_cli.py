import json
import subprocess
import sys

import cv2
import numpy as np

from plate_reader.reader import DEFAULT_ENGINE
from plate_reader.synth import render_plate


def _run(*args):
    return subprocess.run([sys.executable, "-m", "plate_reader.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_reads_and_reports_errors(tmp_path):
    frame = np.full((480, 640, 3), 90, np.uint8)
    plate = cv2.resize(render_plate("晋LD12345", "green"), (192, 56))
    frame[300:356, 200:392] = plate
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), frame)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    p = _run("read", str(good), str(bad), str(empty), str(tmp_path / "missing.jpg"))
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(lines) == 4
    first = lines[0]
    assert set(first) == {"file", "plate", "color", "confidence", "probability", "box", "ms", "engine", "models",
                          "calibration"}
    # The read names the engine and the versions of the models it ran, and its confidence map fits them.
    assert first["engine"] == DEFAULT_ENGINE and first["models"] and all(first["models"].values())
    assert first["calibration"] == {DEFAULT_ENGINE: "current"}
    assert first["plate"] == "晋LD12345" and first["color"] == "green"
    assert 0 <= first["confidence"] <= 1 and 0 <= first["probability"] <= 1 and len(first["box"]) == 4
    assert "晋" in p.stdout.splitlines()[0]  # ensure_ascii=False
    assert [x["error"]["code"] for x in lines[1:]] == ["image_unsupported", "image_empty", "file_not_found"]


def test_cli_all_good_exits_zero(tmp_path):
    f = tmp_path / "none.png"
    cv2.imwrite(str(f), np.full((100, 100, 3), 200, np.uint8))
    p = _run("read", str(f))
    assert p.returncode == 0, p.stderr
    line = json.loads(p.stdout)
    assert line["plate"] is None and line["box"] is None and line["color"] == "unknown"
