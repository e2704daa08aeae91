"""An enterprise token never reads another enterprise's data.

Two enterprises, A and B, each with a gate, passages (hence daily roll-ups), transport volumes and video
segments. With A's token, every GET endpoint in the OpenAPI description is called - with B's identifiers in the
path, with B's identifiers in the query (enterprise_id, gate_id, plate), and in every export format - and each
answer must be a refusal (401/403/404/422) or contain nothing of B. To show the walk is not vacuous, A's own
ledger, report and segments must come back with A's data in them.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gate_service import keys

A, B = "ent-alpha", "ent-bravo"
GATE_A, GATE_B = "gate-alpha", "gate-bravo"
PLATE_A, PLATE_B = "晋LA1111", "晋LB7777"
NAME_B = "乙方BRAVO钢铁有限公司"
GATE_NAME_B = "BRAVO东门"
REFUSED = {401, 403, 404, 422}
WEBSOCKETS = ("/stream", "/watch")


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, rate_limits="off")  # ~100 calls with one token; limits tested elsewhere


def _text(body: bytes, ctype: str) -> str:
    """A response as searchable text (an XLSX workbook's every cell included)."""
    if "spreadsheetml" in ctype:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(body), read_only=True)
        return "\n".join(
            "\t".join("" if v is None else str(v) for v in row)
            for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
        )
    return body.decode("utf-8", "replace")


async def _seed(client: Any, app: Any, admin: dict[str, str]) -> dict[str, str]:
    async def put(path: str, body: dict[str, Any]) -> Any:
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), f"{path}: {await resp.text()}"
        return await resp.json()

    for ent, name in ((A, "甲方ALPHA焦化有限公司"), (B, NAME_B)):
        await put(f"/api/v1/enterprises/{ent}", {"name": name, "industry": "steel", "county": "襄汾县",
                                                 "zone_id": "xiangfen"})
    await put(f"/api/v1/gates/{GATE_A}", {"name": "ALPHA北门", "zone_id": "xiangfen", "enterprise_id": A})
    await put(f"/api/v1/gates/{GATE_B}", {"name": GATE_NAME_B, "zone_id": "xiangfen", "enterprise_id": B})
    for plate in (PLATE_A, PLATE_B):
        await put(f"/api/v1/vehicles/{plate}", {"fuel_type": "electric", "vehicle_class": "heavy_truck",
                                                "emission_stage": 6})
    ids: dict[str, str] = {}
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    for gate, plate, key in ((GATE_A, PLATE_A, "passage_a"), (GATE_B, PLATE_B, "passage_b")):
        for i, direction in enumerate(("in", "out")):
            resp = await client.post(f"/api/v1/gates/{gate}/passages", headers=admin, json={
                "plate": plate, "direction": direction, "at": (at + timedelta(seconds=i)).isoformat(),
                "tonnes": 30, "cargo": "coke"})
            assert resp.status == 201, await resp.text()
            ids[key] = (await resp.json())["passage_id"]
    month = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m")
    ids["month"] = month
    for ent in (A, B):
        await put(f"/api/v1/enterprises/{ent}/transport-volumes/{month}", {"rail_tonnes": 100})
    pool = app[keys.POOL]
    for gate, key in ((GATE_A, "segment_a"), (GATE_B, "segment_b")):
        ids[key] = str(await pool.fetchval(
            """INSERT INTO video_segments (gate_id, started_at, ended_at, storage_key, status, fps, width, height)
               VALUES ($1, now() - interval '10 minutes', now(), $2, 'closed', 10, 640, 480) RETURNING id""",
            gate, f"video/{gate}/seg.mp4"))
    return ids


def _path_values(ids: dict[str, str]) -> dict[str, list[str]]:
    return {
        "id": [B, GATE_B], "enterprise_id": [B], "gate_id": [GATE_B], "plate": [PLATE_B],
        "passage_id": [ids["passage_b"]], "segment_id": [ids["segment_b"]], "month": [ids["month"]],
    }


def _query_variants(query: dict[str, Any]) -> list[dict[str, str]]:
    b_values = {"enterprise_id": B, "gate_id": GATE_B, "plate": PLATE_B}
    base: list[dict[str, str]] = [{}] + [{k: v} for k, v in b_values.items() if k in query]
    if "enterprise_id" in query and "gate_id" in query:
        base.append({"enterprise_id": B, "gate_id": GATE_B})
    views = query.get("view", {}).get("enum", [])
    base += [{**q, "view": v} for q in base[:2] for v in views]
    formats = [f for f in query.get("format", {}).get("enum", []) if f != "json"]
    return base + [{**q, "format": f} for q in base for f in formats]


async def test_enterprise_token_never_sees_another_enterprises_data(client, app, admin, token) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(client, app, admin)
    ent_a = await token("enterprise", enterprise_id=A)
    markers_b = [B, GATE_B, PLATE_B, NAME_B, GATE_NAME_B, ids["passage_b"], f"video/{GATE_B}/"]
    values = _path_values(ids)
    param = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

    calls = 0
    answered: dict[str, str] = {}
    for ep in app[keys.API].endpoints:
        if ep.method != "GET" or ep.path.endswith(WEBSOCKETS):
            continue
        names = param.findall(ep.path)
        for combo in itertools.product(*(values.get(n, ["x"]) for n in names)):
            path = ep.path
            for name, value in zip(names, combo, strict=True):
                path = re.sub(r"\{" + re.escape(name) + r"(?::[^}]*)?\}", value, path, count=1)
            for query in _query_variants(dict(ep.query)):
                resp = await client.get(path, params=query, headers=ent_a)
                calls += 1
                assert resp.status < 500, f"{path} {query}: {resp.status} {await resp.text()}"
                if resp.status in REFUSED:
                    continue
                assert resp.status == 200, f"{path} {query}: {resp.status}"
                text = _text(await resp.read(), resp.headers.get("Content-Type", ""))
                leaked = [m for m in markers_b if m in text]
                assert not leaked, f"enterprise A read B's data via GET {path} {query}: {leaked}\n{text[:800]}"
                if not names and not query:
                    answered[ep.path] = text
    assert calls > 40

    # Not vacuous: A's own data does come back on A's endpoints.
    assert ids["passage_a"] in answered["/api/v1/passages"]
    assert A in answered["/api/v1/reports/clean-transport"]
    assert GATE_A in answered["/api/v1/video/segments"]
    assert GATE_A in answered["/api/v1/gates"] and A in answered["/api/v1/enterprises"]
    # And B's data is really there for someone allowed to see it.
    everything = await (await client.get("/api/v1/passages", headers=admin)).text()
    assert ids["passage_b"] in everything


async def test_enterprise_token_cannot_write_for_another(client, app, admin, token) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(client, app, admin)
    ent_a = await token("enterprise", enterprise_id=A)
    resp = await client.put(f"/api/v1/enterprises/{B}/transport-volumes/{ids['month']}",
                            json={"rail_tonnes": 1}, headers=ent_a)
    assert resp.status == 403
    resp = await client.put(f"/api/v1/enterprises/{A}/transport-volumes/{ids['month']}",
                            json={"rail_tonnes": 1}, headers=ent_a)
    assert resp.status in (200, 201)
