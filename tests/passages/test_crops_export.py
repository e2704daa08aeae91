"""`gate-service crops export`: the gates' plate crops with the plate guards confirmed or corrected."""

import csv
import io
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from gate_service import keys
from gate_service.cli import main as cli_main
from gate_service.passages.crops import export_crops
from tests.conftest import EASYPR

PHOTOS = {"京A88731": EASYPR / "shared_0001.jpg", "京PC5U22": EASYPR / "shared_0005.jpg"}  # dev half
pytestmark = pytest.mark.skipif(not all(p.exists() for p in PHOTOS.values()), reason="EasyPR photos not found")


async def _drive_past(client, kiosk, photo):
    image = cv2.imread(str(photo))
    passage = None
    for i in range(6):
        data = cv2.imencode(".jpg", np.roll(image, 4 * i, axis=1))[1].tobytes()
        resp = await client.post("/api/v1/gates/city-1/frames", data=data,
                                 headers={**kiosk, "Content-Type": "image/jpeg"})
        passage = passage or (await resp.json())["passage"]
    assert passage is not None
    return passage


async def test_export_labels_crops_by_guard_corrections(client, admin, token, app, tmp_path):
    await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    kiosk = await token("kiosk", gate_id="city-1")
    first = await _drive_past(client, kiosk, PHOTOS["京A88731"])
    second = await _drive_past(client, kiosk, PHOTOS["京PC5U22"])
    assert (first["plate"], second["plate"]) == ("京A88731", "京PC5U22")
    # The guard says the first lorry was really 京A88781 (the camera misread one digit).
    resp = await client.post("/api/v1/gates/city-1/passages", headers=kiosk, json={
        "plate": "京A88781", "direction": "in", "overrides": first["passage_id"],
        "override_reason": "车牌识别错误,人工核对为京A88781"})
    assert resp.status == 201, await resp.text()

    pool, store = app[keys.POOL], app[keys.MEDIA_STORE]
    now = datetime.now(timezone.utc)
    counts = await export_crops(pool, store, tmp_path / "all", now - timedelta(hours=1), now + timedelta(hours=1))
    assert counts == {"corrected": 1, "guard_checked": 0, "camera": 1, "missing": 0}
    raw = (tmp_path / "all" / "labels.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"))))
    by_source = {r["label_source"]: r for r in rows}
    corrected = by_source["corrected"]
    assert (corrected["plate"], corrected["camera_plate"]) == ("京A88781", "京A88731")
    assert corrected["passage_id"] == first["passage_id"] and corrected["override_reason"].startswith("车牌识别错误")
    assert (by_source["camera"]["plate"], by_source["camera"]["camera_plate"]) == ("京PC5U22", "京PC5U22")
    for r in rows:
        crop = cv2.imread(str(tmp_path / "all" / r["file"]))
        assert crop is not None and crop.shape[1] > crop.shape[0]  # a plate: wider than high
        assert 0 < float(r["confidence"]) <= 1 and r["at"].endswith("+08:00")

    # Only the corrections; and a crop retention already removed is counted, not fatal.
    ref = await pool.fetchval("SELECT crop_ref FROM passages WHERE id = $1", first["passage_id"])
    await store.delete(ref)
    counts = await export_crops(pool, store, tmp_path / "fixed", now - timedelta(hours=1), now + timedelta(hours=1),
                                sources=("corrected",))
    assert counts == {"corrected": 0, "guard_checked": 0, "camera": 0, "missing": 1}
    # Another day: nothing.
    counts = await export_crops(pool, store, tmp_path / "none", now - timedelta(days=3), now - timedelta(days=2))
    assert sum(counts.values()) == 0 and (tmp_path / "none" / "labels.csv").exists()


def test_export_command_refuses_an_empty_period(tmp_path, capsys):
    code = cli_main(["crops", "export", "--since", "2026-11-02", "--until", "2026-11-01", "--out", str(tmp_path),
                     "--data-dir", str(tmp_path)])
    assert code == 2 and "--until" in capsys.readouterr().err
