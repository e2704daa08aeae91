"""Issue 15 item 12: inputs at the edge of what Python and PostgreSQL can hold get a 4xx with a code, never a 500."""

from __future__ import annotations

import pytest


async def _error(resp, status: int | tuple[int, ...] = 422) -> dict:  # type: ignore[no-untyped-def, type-arg]
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status in statuses, f"{resp.status}: {await resp.text()}"
    assert resp.headers["Content-Type"].startswith("application/json")
    return (await resp.json())["error"]


async def _world(client, admin):  # type: ignore[no-untyped-def]
    await client.put("/api/v1/enterprises/e1", json={"name": "某钢铁", "industry": "steel", "zone_id": "other"},
                     headers=admin)
    await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e1", "zone_id": "other"},
                     headers=admin)


async def test_a_5000_digit_integer(client, admin) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    body = '{"plate": "晋LA1234", "direction": "in", "tonnes": ' + "9" * 5000 + "}"
    resp = await client.post("/api/v1/gates/g1/passages", data=body.encode(),
                             headers={**admin, "Content-Type": "application/json"})
    error = await _error(resp)
    assert error["code"] == "invalid_value" and error["field"] == "tonnes"


async def test_100k_deep_nesting(client, admin) -> None:  # type: ignore[no-untyped-def]
    body = '{"fuel_type": "diesel", "vehicle_class": "car", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    resp = await client.put("/api/v1/vehicles/晋LA1234", data=body.encode(),
                            headers={**admin, "Content-Type": "application/json"})
    assert (await _error(resp, 400))["code"] == "json_too_deep"
    # Deep, but within what the parser takes: still refused by the walk, without exhausting the stack.
    body = '{"fuel_type": "diesel", "vehicle_class": "car", "extra": {"a": ' + "[" * 500 + "]" * 500 + "}}"
    resp = await client.put("/api/v1/vehicles/晋LA1234", data=body.encode(),
                            headers={**admin, "Content-Type": "application/json"})
    assert (await _error(resp, 400))["code"] == "json_too_deep"


@pytest.mark.parametrize("path", [
    "/api/v1/reports/clean-transport?from=9999-01-01",
    "/api/v1/reports/clean-transport?from=9999-01-01&to=9999-12-31",
    "/api/v1/reports/clean-transport?as_of=9999-12-31",
    "/api/v1/reports/clean-transport?as_of=9999-12-31T23:59:59Z",
    "/api/v1/passages?from=9999-01-01",
    "/api/v1/passages?to=9999-12-31",
    "/api/v1/audit?to=9999-12-31",
    "/api/v1/video/segments?to=9999-12-31",
    "/api/v1/policies?at=9999-12-31T23:59:59Z",
    "/api/v1/policies?at=0001-01-01T00:00:00%2B08:00",
    "/api/v1/alerts?at=9999-12-31T23:59:59Z",
    "/api/v1/blacklist?added_to=9999-12-31",
])
async def test_far_dates_in_queries(client, admin, path) -> None:  # type: ignore[no-untyped-def]
    error = await _error(await client.get(path, headers=admin))
    assert error["code"] == "date_out_of_range" and error["field"]


async def test_far_dates_in_bodies(client, admin) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    resp = await client.post("/api/v1/alerts", headers=admin, json={
        "level": "orange", "starts_at": "2026-12-01T00:00:00+08:00", "ends_at": "9999-12-31T23:59:59-12:00"})
    error = await _error(resp)
    assert error["code"] == "date_out_of_range" and error["field"] == "ends_at"
    resp = await client.put("/api/v1/vehicles/晋LA1234", headers=admin, json={
        "fuel_type": "diesel", "vehicle_class": "car", "registered_on": "0001-01-01"})
    assert (await _error(resp))["code"] == "date_out_of_range"


async def test_a_bad_document_ref(client, admin, app) -> None:  # type: ignore[no-untyped-def]
    from gate_service import keys

    # Document keys are made by the server on upload; a client cannot set one.
    resp = await client.put("/api/v1/vehicles/晋LA1234", headers=admin, json={
        "fuel_type": "diesel", "vehicle_class": "car", "extra": {"document_ref": "../../etc/passwd"}})
    error = await _error(resp)
    assert error["code"] == "reserved_field" and error["field"] == "extra.document_ref"
    resp = await client.put("/api/v1/vehicles/晋LA1234", headers=admin, json={
        "fuel_type": "diesel", "vehicle_class": "car", "document_ref": "/abs/path"})
    assert (await _error(resp))["code"] == "reserved_field"
    # One stored before this check (written by an older service) is never served: documents are found only in
    # vehicle_documents, by their server-made keys (404, not 500).
    assert (await client.put("/api/v1/vehicles/晋LA1234", headers=admin,
                             json={"fuel_type": "diesel", "vehicle_class": "car"})).status == 201
    await app[keys.POOL].execute(
        """UPDATE vehicles SET extra = '{"document_ref": "../../etc/passwd"}' WHERE plate = '晋LA1234'""")
    resp = await client.get("/api/v1/console/vehicles/晋LA1234/document", headers=admin)
    # extra.document_ref is never read (documents live in vehicle_documents, migration 0008): no document.
    assert (await _error(resp, 404))["code"] == "no_document"


@pytest.mark.parametrize("path", ["/api/v1/vehicles/import", "/api/v1/blacklist/import"])
async def test_a_csv_without_a_header_row_is_refused(client, admin, app, path) -> None:  # type: ignore[no-untyped-def]
    from gate_service import keys

    body = "晋LA1234,diesel,heavy_truck\n晋LB4444,diesel,heavy_truck\n".encode()
    if "blacklist" in path:
        body = "晋LA1234,obd_tampering,2030-01-01\n晋LB4444,over_limit,2030-01-01\n".encode()
    resp = await client.post(path, data=body, headers={**admin, "Content-Type": "text/csv"})
    error = await _error(resp, 400)
    assert error["code"] == "no_header"
    pool = app[keys.POOL]
    assert await pool.fetchval("SELECT count(*) FROM vehicles") == 0
    assert await pool.fetchval("SELECT count(*) FROM blacklist_entries") == 0
    # With its header the same file imports both rows.
    header = "车牌,原因,有效期至\n" if "blacklist" in path else "plate,fuel_type,vehicle_class\n"
    resp = await client.post(path, data=header.encode() + body, headers={**admin, "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
