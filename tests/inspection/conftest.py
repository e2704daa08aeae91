"""A month of passages with an orange alert in it (December 2024), recorded through the real judge and ledger.

The numbers the tests check are worked out here, next to the rows that make them.

Alerts: yellow all of Wed 12-11 (so 12-11 is no ordinary day); orange 12-18 08:00 → 12-20 00:00 (days 18, 19).

e-a (steel, 襄汾县; gates g-a1 with video, g-a2 without):
- November: 20 trips in at g-a1, one per weekday 11-04..11-29; the first two electric, 18 国5 diesel → clean 2/20.
- December working days 2-6, 9-13, 16-17 (11 = yellow): IN[day] trips in; one of them the 国5 diesel at g-a2
  (in 08:00, out 09:00), the rest electric at g-a1; every truck in also goes out one hour later, same gate.
  Saturday 12-07: 2 electric in+out at g-a1 (a weekend day: no ordinary day).
- 12-18 (orange from 08:00): 07:00 electric in, 07:30 out (g-a1); 09:00 国4 diesel heavy truck in → denied
  (alert-key-industry-guo4); 09:05 the guard overrides it (人工放行) → allowed; 11:00 国5 diesel in, allowed.
- 12-19: nothing at all. 12-30 09:00 and 12-31 09:00: electric camera passages with snapshot and plate crop.
- Transport volumes: rail 100 t in November, 105 t in December (+5%: no rise).
- Video (g-a1): 12-18 00:00-10:00 and 10:20-24:00 (a 20-minute gap), 12-19 all day, 12-17 all day.
e-b (coal, 霍州市; gate g-b1): 5 国5 trips in per working day of December but 12-11, none on 12-18/19, one on 12-31;
  a 国3 truck denied on 12-02 12:00 (gate_seq 6), then deleted behind the ledger's back → a seq hole 5 → 7.
  Rail 100 t in November, 500 t in December (it did move to rail).
g-a2's last row (12-17 09:00, the 国5 truck going out) is deleted the same way: rows missing at the chain's end.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import cv2
import numpy as np
import pytest

from gate_service import keys
from gate_service.passages.judge import PassageInput
from gate_service.policy.model import SHANGHAI
from gate_service.video.storage import media_key

EV, EV2, D5, D4, D3 = "晋L12345D", "晋L23456D", "晋LA1234", "晋LB4444", "晋LC3333"
IN = {2: 4, 3: 6, 4: 5, 5: 7, 6: 5, 9: 6, 10: 4, 11: 9, 12: 8, 13: 5, 16: 6, 17: 7}
NOVEMBER_DAYS = [d for d in range(4, 30) if date(2024, 11, d).weekday() < 5]


def at(day: date | int, hour: int, minute: int = 0) -> datetime:
    d = day if isinstance(day, date) else date(2024, 12, day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=SHANGHAI)


def jpeg(text: str, width: int = 320, height: int = 200) -> bytes:
    img = np.full((height, width, 3), 200, np.uint8)
    cv2.putText(img, text, (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


@pytest.fixture
async def month(client, app, admin):
    async def put(path, body):
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), await resp.text()

    async def post(path, body):
        resp = await client.post(path, json=body, headers=admin)
        return resp.status, await resp.json()

    return {**await build_month(app, put, post), "admin": admin}


async def build_month(app, put, post):
    """The month, through ``put(path, body)`` / ``post(path, body) -> (status, json)`` (the API, as admin) and
    the app's own judge; also used by the browser test against a live server."""

    await put("/api/v1/enterprises/e-a", {"name": "襄汾某钢铁", "industry": "steel", "county": "襄汾县",
                                          "zone_id": "other", "grade": "C"})
    await put("/api/v1/enterprises/e-b", {"name": "霍州某煤矿", "industry": "coal", "county": "霍州市",
                                          "zone_id": "other", "grade": "C"})
    for gid, eid in (("g-a1", "e-a"), ("g-a2", "e-a"), ("g-b1", "e-b")):
        await put(f"/api/v1/gates/{gid}", {"name": f"{gid}号门", "enterprise_id": eid, "zone_id": "other"})
    for plate, body in {
        EV: {"plate_color": "yellow-green", "fuel_type": "electric", "vehicle_class": "heavy_truck"},
        EV2: {"plate_color": "yellow-green", "fuel_type": "electric", "vehicle_class": "heavy_truck"},
        D5: {"plate_color": "yellow", "emission_stage": 5, "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
        D4: {"plate_color": "yellow", "emission_stage": 4, "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
        D3: {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
    }.items():
        await put(f"/api/v1/vehicles/{plate}", body)
    alerts = {}
    for level, starts, ends in (("yellow", at(11, 0), at(12, 0)), ("orange", at(18, 8), at(20, 0))):
        status, created = await post("/api/v1/alerts", {
            "level": level, "starts_at": starts.isoformat(), "ends_at": ends.isoformat(), "note": "测试"})
        assert status == 201, created
        alerts[level] = created["id"]

    judge = app[keys.JUDGE]
    media = app[keys.MEDIA_STORE]

    async def record(gate, plate, moment, direction="in", **extra):
        judged = await judge.record(PassageInput(gate_id=gate, plate=plate, direction=direction, at=moment, **extra),
                                    token_id=None, actor="test")
        return judged.response()

    # Chronological per gate, so gate_seq follows time.
    for k, d in enumerate(NOVEMBER_DAYS):
        await record("g-a1", EV if k < 2 else D5, at(date(2024, 11, d), 10))
    for d, n in IN.items():
        await record("g-a2", D5, at(d, 8))
        last_a2 = await record("g-a2", D5, at(d, 9), "out")
        for i in range(n - 1):
            await record("g-a1", EV, at(d, 10, i))
            await record("g-a1", EV, at(d, 11, i), "out")
    await record("g-a1", EV, at(7, 10))
    await record("g-a1", EV, at(7, 11), "out")
    await record("g-a1", EV2, at(7, 10, 5))
    await record("g-a1", EV2, at(7, 11, 5), "out")
    await record("g-a1", EV, at(18, 7))
    await record("g-a1", EV, at(18, 7, 30), "out")
    denied = await record("g-a1", D4, at(18, 9))
    assert denied["decision"] == "deny" and "alert-key-industry-guo4" in [r["rule"] for r in denied["reasons"]]
    status, override = await post("/api/v1/gates/g-a1/passages", {
        "plate": D4, "direction": "in", "at": at(18, 9, 5).isoformat(), "overrides": denied["passage_id"],
        "override_reason": "应急保供物资，值班领导批准"})
    assert status == 201, override
    assert override["decision"] == "allow"
    allowed_d5 = await record("g-a1", D5, at(18, 11))
    assert allowed_d5["decision"] == "allow"
    images = {}
    for d, plate in ((30, EV), (31, EV2)):
        moment = at(d, 9)
        snap = (await media.put(media_key("snapshots", "g-a1", moment, f"s{d}.jpg"), jpeg(f"snap {d}"))).key
        crop = (await media.put(media_key("crops", "g-a1", moment, f"c{d}.jpg"), jpeg(plate[-5:], 160, 50))).key
        r = await record("g-a1", plate, moment, source="camera", snapshot_ref=snap, crop_ref=crop)
        images[r["passage_id"]] = (snap, crop)

    for d in IN:
        if d == 11:
            continue
        for i in range(5):
            await record("g-b1", D5, at(d, 8, 10 * i))
        if d == 2:
            gone = await record("g-b1", D3, at(2, 12))
            assert gone["decision"] == "deny"
    await record("g-b1", D5, at(31, 8))

    for eid, month_, rail in (("e-a", "2024-11", 100), ("e-a", "2024-12", 105), ("e-b", "2024-11", 100),
                              ("e-b", "2024-12", 500)):
        await put(f"/api/v1/enterprises/{eid}/transport-volumes/{month_}", {"rail_tonnes": rail})

    pool = app[keys.POOL]
    for gate, day, lo, hi in (("g-a1", 17, (0, 0), (24, 0)), ("g-a1", 18, (0, 0), (10, 0)),
                              ("g-a1", 18, (10, 20), (24, 0)), ("g-a1", 19, (0, 0), (24, 0))):
        start = at(day, *lo)
        end = at(day, 0) + timedelta(hours=hi[0], minutes=hi[1])
        await pool.execute(
            """INSERT INTO video_segments (gate_id, started_at, ended_at, storage_key, status, fps, width, height,
                                           frames, bytes, sha256)
               VALUES ($1, $2, $3, $4, 'closed', 5, 640, 480, $5, $6, $7)""",
            gate, start, end, f"video/{gate}/{start:%Y%m%d%H%M}.mp4", int((end - start).total_seconds() * 5),
            1_000_000, f"{day:02d}{lo[0]:02d}".ljust(64, "a"))

    # Someone removes a row of g-b1 behind the ledger's back (triggers off, as a superuser could).
    async with pool.acquire() as conn:
        await conn.execute("SET session_replication_role = replica")
        for row in (gone, last_a2):
            await conn.execute("DELETE FROM passages WHERE id = $1", uuid.UUID(row["passage_id"]))
        await conn.execute("SET session_replication_role = origin")
    # The registry learns later that the 国4 truck is really 国3: the packet's re-check must mark it.
    await put(f"/api/v1/vehicles/{D4}", {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel",
                                         "vehicle_class": "heavy_truck"})
    return {"alerts": alerts, "denied": denied["passage_id"], "override": override["passage_id"],
            "d5": allowed_d5["passage_id"], "images": images}
