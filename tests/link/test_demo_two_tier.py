"""`gate-service serve --demo-two-tier`: a platform and a site as two processes; the site's demo passages show up
at the platform's GET /api/v1/sites, and SIGTERM ends both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks._service import free_port


def _get(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_two_tier_demo_uploads_and_stops_cleanly():
    data = Path(tempfile.mkdtemp(prefix="cg-2tier-"))
    port = free_port(span=2)  # the platform on port, the site on port + 1
    log = open(data / "out.log", "w+")  # noqa: SIM115 - read while the child writes
    proc = subprocess.Popen([sys.executable, "-m", "gate_service", "serve", "--demo-two-tier", "--port", str(port),
                             "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        admin, sites = None, []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            text = (data / "out.log").read_text()
            if admin is None:
                admin = next((ln.split()[-1] for ln in text.splitlines() if ln.startswith("  admin    ")), None)
                continue
            sites = _get(f"http://127.0.0.1:{port}/api/v1/sites", admin)["sites"]
            if sites and sites[0]["uploaded"] > 0:
                break
        assert admin, (data / "out.log").read_text()[-3000:]
        assert sites and sites[0]["uploaded"] > 0 and sites[0]["chain"] == "ok", sites
        assert sites[0]["online"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    time.sleep(2)
    for p in (port, port + 1):
        alive = subprocess.run(["pgrep", "-f", f"serve.*--port {p}( |$)"], capture_output=True, text=True).stdout
        assert not alive.strip(), f"the service on port {p} outlived the demo"
    for tier in ("platform", "site"):
        pg = data / "two-tier" / tier / "pg"
        if (pg / "postmaster.pid").exists():
            from pgserver._commands import pg_ctl

            try:
                pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pg, user="pgserver" if os.geteuid() == 0 else None)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
    import shutil

    shutil.rmtree(data, ignore_errors=True)


def test_two_tier_demo_refuses_a_busy_site_port_before_starting_anything():
    import socket

    data = Path(tempfile.mkdtemp(prefix="cg-2tier-busy-"))
    port = free_port(span=2)
    with socket.socket() as held:
        held.bind(("127.0.0.1", port + 1))
        held.listen()
        out = subprocess.run([sys.executable, "-m", "gate_service", "serve", "--demo-two-tier", "--port", str(port),
                              "--data-dir", str(data)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"port(s) in use: {port + 1}" in out.stderr and "端口已被占用" in out.stderr
    assert "Traceback" not in out.stderr
    # Nothing was started: no platform database was made.
    assert not (data / "two-tier" / "platform" / "pg").exists()
    import shutil

    shutil.rmtree(data, ignore_errors=True)
