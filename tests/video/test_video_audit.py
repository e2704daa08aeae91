"""The video self-audit measured on a recording of a known sequence: three vehicles drive through, the ledger
has two of them; the audit must name exactly the third."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from gate_service import keys
from gate_service.ledger import store as ledger
from gate_service.video.audit import Sighting, match
from tests.cameras.conftest import scenes
from tests.waiting import until

T0 = datetime(2026, 11, 30, 1, 0, 0, tzinfo=timezone.utc)


async def record_lane(app, gate: str, start: datetime, fps: float = 5.0) -> list[tuple[str, datetime]]:
    """Record the lane through the kiosk-frame recorder; return (plate, when the vehicle appears)."""
    parts, plates = scenes()
    recorder = app[keys.VIDEO_RECORDER]
    at = start
    appear = []
    sent, written, left_out = 0, recorder.frames_written, recorder.frames_left_out
    for n, (picture, seconds) in enumerate(parts):
        if n % 2 == 1:
            appear.append((plates[n // 2], at))
        for _ in range(int(seconds * fps)):
            await recorder.add_frame(gate, at, picture)
            sent += 1
            at += timedelta(seconds=1 / fps)
            # Frames arrive over time, never further ahead of the encoder than its queue holds: a frame beyond it
            # is left out (the previous picture stands in), and on a loaded machine the encoder is slow, so a
            # vehicle's arrival could be shifted or lost from the video. Paced on what was written, not on a sleep.
            await asyncio.sleep(0.01)
            await until(lambda sent=sent: sent - (recorder.frames_written - written) < recorder.queue_frames,
                        what="the encoder taking the lane's frames")
    await recorder.close_gate(gate)
    assert recorder.frames_left_out == left_out  # every picture of the lane is in the video
    return appear


async def ledger_row(app, gate: str, plate: str, at: datetime) -> str:
    async with app[keys.POOL].acquire() as conn, conn.transaction():
        row = await ledger.append(conn, {
            "at": at, "gate_id": gate, "enterprise_id": "e1", "zone_id": "xiangfen", "direction": "in",
            "plate": plate, "source": "camera", "registered": False, "decision": "allow", "reasons": [],
            "rules": [], "blacklisted": False, "clean": False})
    return str(row["id"])


async def wait_done(client, headers, audit_id, timeout=600):
    for _ in range(int(timeout / 0.5)):
        body = await (await client.get(f"/api/v1/video/audits/{audit_id}", headers=headers)).json()
        if body["status"] != "running":
            return body
        await asyncio.sleep(0.5)
    raise AssertionError("the audit did not finish")


async def test_the_audit_names_exactly_the_vehicle_missing_from_the_ledger(client, app, admin, token, settings,
                                                                           tmp_path):
    for path, body in (("/api/v1/enterprises/e1", {"name": "企业", "industry": "steel", "county": "襄汾县",
                                                   "zone_id": "xiangfen", "retrofit_completed_on": None,
                                                   "grade": "A"}),
                       ("/api/v1/gates/g1", {"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"})):
        assert (await client.put(path, json=body, headers=admin)).status in (200, 201)
    app[keys.VIDEO_RECORDER].segment_seconds = 20  # the sequence spans two segments
    appear = await record_lane(app, "g1", T0)
    assert len(appear) == 3
    # The ledger has the first and the last vehicle (decided a few seconds after they showed); not the second.
    recorded = {plate: await ledger_row(app, "g1", plate, when + timedelta(seconds=3))
                for plate, when in (appear[0], appear[2])}
    missing = appear[1][0]

    ecology = await token("ecology")
    resp = await client.post("/api/v1/video/audits", headers=ecology, json={
        "gate_id": "g1", "from": T0.isoformat(), "to": (T0 + timedelta(minutes=1)).isoformat(),
        "tolerance_seconds": 60})
    assert resp.status == 202, await resp.text()
    done = await wait_done(client, ecology, (await resp.json())["id"])
    assert done["status"] == "done", done
    result = done["result"]
    assert result["segments"] >= 2 and result["video_seconds"] > 20
    findings = [v for v in result["vehicles"] if not v["in_ledger"]]
    assert [f["plate"] for f in findings] == [missing], result["vehicles"]
    assert abs(datetime.fromisoformat(findings[0]["at"]) - appear[1][1]) < timedelta(seconds=3)
    assert findings[0]["thumbnail"].startswith("data:image/jpeg;base64,")
    matched = {v["plate"]: v["passage_id"] for v in result["vehicles"] if v["in_ledger"]}
    assert matched == recorded
    assert done["findings"] == 1 and done["vehicles"] == 3
    listed = await (await client.get("/api/v1/video/audits?gate_id=g1", headers=ecology)).json()
    assert listed["audits"][0]["findings"] == 1
    enterprise = await token("enterprise", enterprise_id="e1")
    assert (await client.get("/api/v1/video/audits", headers=enterprise)).status == 403

    # The operator's command says the same, and exits 1 for a finding.
    env = {**os.environ, "DATABASE_URL": settings.database_url, "CLEANGATE_DATA_DIR": str(settings.data_dir)}
    out = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "gate_service", "video", "audit", "--gate", "g1", "--from", "2026-11-30T09:00",
        "--to", "2026-11-30T09:01", "--tolerance", "60", "--out", str(tmp_path / "audit")],
        env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    missing_lines = [line for line in out.stdout.splitlines() if "NOT IN LEDGER" in line]
    assert len(missing_lines) == 1 and missing in missing_lines[0], out.stdout
    assert len(list((tmp_path / "audit").glob("*.jpg"))) == 3


def test_the_nightly_sample_is_inside_the_recorded_alert_hours_and_reproducible():
    from datetime import date

    from gate_service.video.audit_job import SAMPLE, sample_start

    day = date(2026, 11, 30)
    windows = [(T0, T0 + timedelta(minutes=8)), (T0 + timedelta(hours=1), T0 + timedelta(hours=2))]
    first = sample_start("g1", day, windows)
    assert first == sample_start("g1", day, windows)
    assert windows[1][0] <= first and first + SAMPLE <= windows[1][1]  # the 8-minute window is too short
    assert sample_start("g1", day, [(T0, T0 + timedelta(minutes=5))]) is None


@pytest.mark.parametrize("body, code", [
    ({"gate_id": "g1", "from": "2026-11-30T02:00:00+08:00", "to": "2026-11-30T01:00:00+08:00"}, "invalid_period"),
    ({"gate_id": "g1", "from": "2026-11-30T00:00:00+08:00", "to": "2026-11-30T08:00:00+08:00"}, "period_too_long"),
    ({"gate_id": "g1", "from": "2026-11-30T00:00:00", "to": "2026-11-30T01:00:00+08:00"}, "validation_failed"),
    ({"gate_id": "nogate", "from": "2026-11-30T00:00:00+08:00", "to": "2026-11-30T01:00:00+08:00"}, "not_found"),
])
async def test_bad_audit_requests_get_clear_errors(client, admin, body, code):
    await client.put("/api/v1/gates/g1", json={"name": "门", "zone_id": "city"}, headers=admin)
    resp = await client.post("/api/v1/video/audits", headers=admin, json=body)
    assert resp.status in (404, 422)
    assert (await resp.json())["error"]["code"] == code


def test_matching_prefers_the_same_plate_then_one_character_off_then_unread():
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seen = [Sighting(t, "晋LA1234", 0.9, b"", 1, 0), Sighting(t + timedelta(seconds=30), "晋LA1284", 0.9, b"", 1, 0),
            Sighting(t + timedelta(seconds=60), None, 0.0, b"", 1, 0),
            Sighting(t + timedelta(seconds=400), "晋LB0000", 0.9, b"", 1, 0)]
    rows = [{"id": "a", "at": t + timedelta(seconds=40), "plate": "晋LA1234"},
            {"id": "b", "at": t + timedelta(seconds=35), "plate": "晋LA1234"},
            {"id": "c", "at": t + timedelta(seconds=70), "plate": "晋LC5555"}]
    match(seen, rows, timedelta(seconds=120))
    assert [s.passage_id for s in seen] == ["b", "a", "c", None]
