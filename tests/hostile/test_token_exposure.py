"""Where a token may travel and how often it may be wrong: ?access_token= on WebSocket routes only, failed
authentication limited per client address, console pages that cannot be framed or leak their URL."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gate_service import keys

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
NGINX = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "cleangate.conf"


@pytest.fixture
async def kiosk(client, admin, token):
    resp = await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    assert resp.status == 201
    headers = await token("kiosk", gate_id="city-1")
    return headers["Authorization"].split()[1]


@pytest.mark.parametrize("path", ["/api/v1/gates/city-1/latest.jpg", "/api/v1/console/whoami",
                                  "/api/v1/passages?gate_id=city-1"])
async def test_a_token_in_the_url_is_refused_on_plain_routes_even_with_an_upgrade_header(client, kiosk, path):
    sep = "&" if "?" in path else "?"
    resp = await client.get(f"{path}{sep}access_token={kiosk}", headers=UPGRADE)
    assert resp.status == 401
    body = await resp.json()
    assert body["error"]["code"] == "token_in_query"


async def test_a_token_in_the_url_still_opens_the_watch_websocket(client, kiosk):
    ws = await client.ws_connect(f"/api/v1/gates/city-1/watch?access_token={kiosk}")
    hello = await ws.receive_json(timeout=10)
    assert hello == {"type": "hello", "gate_id": "city-1", "watching": True}
    await ws.close()


async def test_a_token_in_the_url_of_a_websocket_route_without_upgrade_is_refused(client, kiosk):
    resp = await client.get(f"/api/v1/gates/city-1/watch?access_token={kiosk}")
    assert resp.status == 401


async def test_failed_authentication_is_limited_per_client_address(client, app, kiosk):
    limit = app[keys.AUTH_FAILURES].limit
    assert limit is not None
    seen = await client.get("/api/v1/console/whoami", headers={"Authorization": f"Bearer {kiosk}"})
    assert seen.status == 200
    codes = []
    for i in range(int(limit.burst) + 1):
        resp = await client.get("/api/v1/console/whoami", headers={"Authorization": f"Bearer cg_guess{i}"})
        codes.append((resp.status, (await resp.json())["error"]["code"]))
    assert codes[:-1] == [(401, "invalid_token")] * int(limit.burst)
    assert codes[-1] == (429, "rate_limited")
    # While the address is locked out, further guesses are not even looked up: still 429, with Retry-After.
    resp = await client.get("/api/v1/console/whoami", headers={"Authorization": "Bearer cg_another"})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    # A token this replica has already seen valid keeps working: kiosks behind the same NAT are not locked out.
    ok = await client.get("/api/v1/console/whoami", headers={"Authorization": f"Bearer {kiosk}"})
    assert ok.status == 200


async def test_failed_authentication_counts_the_client_behind_a_trusted_proxy(settings, aiohttp_client, token):
    from gate_service.app import create_app

    app = create_app(dataclasses.replace(settings, trusted_proxies=("127.0.0.1",)))
    client = await aiohttp_client(app)
    burst = int(app[keys.AUTH_FAILURES].limit.burst)
    for i in range(burst):
        resp = await client.get("/api/v1/console/whoami", headers={"Authorization": f"Bearer cg_x{i}",
                                                                   "X-Forwarded-For": "203.0.113.7"})
        assert resp.status == 401
    blocked = await client.get("/api/v1/console/whoami", headers={"Authorization": "Bearer cg_y",
                                                                  "X-Forwarded-For": "203.0.113.7"})
    assert blocked.status == 429
    other = await client.get("/api/v1/console/whoami", headers={"Authorization": "Bearer cg_y",
                                                                "X-Forwarded-For": "198.51.100.2"})
    assert other.status == 401  # another client behind the same proxy is not punished


@pytest.mark.parametrize("page", ["/", "/kiosk", "/police", "/bureau"])
async def test_console_pages_carry_csp_frame_and_referrer_headers(client, page):
    resp = await client.get(page)
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["object-src"] == "'none'"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # Every inline script the page has is allowed by its hash, so the page still works under the policy.
    import base64
    import hashlib

    html = await resp.text()
    for script in re.findall(r"<script>(.*?)</script>", html, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives["script-src"]


def test_the_shipped_nginx_access_log_has_no_query_strings() -> None:
    conf = NGINX.read_text(encoding="utf-8")
    fmt = re.search(r"log_format\s+(\w+)(.*?);", conf, re.S)
    assert fmt is not None, "deploy/nginx must define its own log_format"
    name, body = fmt.group(1), fmt.group(2)
    for variable in ("$request ", "$request'", '$request"', "$request_uri", "$args", "$query_string",
                     "$arg_"):
        assert variable not in body + " ", variable
    assert "$uri" in body
    for line in re.findall(r"^\s*access_log\s+([^;]+);", conf, re.M):
        parts = line.split()
        assert parts[0] == "off" or (len(parts) >= 2 and parts[1] == name), line


async def test_the_console_passes_its_token_as_a_websocket_subprotocol(client, kiosk):
    # What kiosk.js does (new WebSocket(url, ["cleangate.v1", "bearer." + token])): no token in any URL.
    ws = await client.ws_connect("/api/v1/gates/city-1/watch", protocols=("cleangate.v1", f"bearer.{kiosk}"))
    assert ws.protocol == "cleangate.v1"  # a browser drops a socket whose server picks no offered protocol
    assert await ws.receive_json(timeout=10) == {"type": "hello", "gate_id": "city-1", "watching": True}
    await ws.close()
    js = (Path(__file__).resolve().parents[2] / "gate_service" / "console" / "static" / "kiosk.js").read_text()
    assert "access_token" not in js
    # A wrong one is refused like a wrong header; a plain route ignores the subprotocol header.
    with pytest.raises(Exception) as refused:
        await client.ws_connect("/api/v1/gates/city-1/watch", protocols=("cleangate.v1", "bearer.cg_wrong"))
    assert getattr(refused.value, "status", None) == 401
    plain = await client.get("/api/v1/console/whoami", headers={**UPGRADE, "Sec-WebSocket-Protocol": f"bearer.{kiosk}"})
    assert plain.status == 401
