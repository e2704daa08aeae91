"""Regressions for what the fuzzer found: each was a 500 before."""

from __future__ import annotations


async def _error(resp) -> dict:  # type: ignore[no-untyped-def]
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert body["error"]["code"] and body["error"]["message"]
    return body["error"]


async def test_json_endpoint_without_body_names_the_missing_field(client, admin) -> None:  # type: ignore[no-untyped-def]
    for method, path in (("PUT", "/api/v1/enterprises/e-x"), ("PUT", "/api/v1/gates/g-x"),
                         ("POST", "/api/v1/alerts"), ("POST", "/api/v1/video/segments/1/release")):
        resp = await client.request(method, path, headers=admin)
        assert resp.status in (404, 422), f"{method} {path}: {resp.status}"
        error = await _error(resp)
        assert resp.status == 404 or error["code"] == "missing_field"


async def test_nul_characters_are_refused_not_passed_to_postgresql(client, admin) -> None:  # type: ignore[no-untyped-def]
    resp = await client.get("/api/v1/enterprises", params={"county": "\x00"}, headers=admin)
    assert resp.status == 400 and (await _error(resp))["code"] == "invalid_character"
    resp = await client.get("/api/v1/enterprises/a%00b", headers=admin)
    assert resp.status == 400 and (await _error(resp))["code"] == "invalid_character"
    resp = await client.put("/api/v1/enterprises/e-x", headers=admin,
                            json={"name": "a\x00b", "industry": "steel"})
    assert resp.status == 422 and (await _error(resp))["code"] == "invalid_character"
    resp = await client.put("/api/v1/vehicles/晋LA1234", headers=admin,
                            json={"fuel_type": "diesel", "vehicle_class": "heavy_truck", "extra": {"k\x00": 1}})
    assert resp.status == 422 and (await _error(resp))["code"] == "invalid_character"
