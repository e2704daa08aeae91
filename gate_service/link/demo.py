"""`gate-service serve --demo-two-tier` (`scripts/run --two-tier`): a platform and one site, two processes.

The platform (port P, `<data dir>/platform`) gets the demo registry's enterprises and gates and a site token
bound to the demo's three kiosk gates; the site (port P+1, `<data dir>/site`) runs the ordinary demo (sample
registry, simulated kiosk) with CLEANGATE_PLATFORM_URL set, so its passages show up at the platform's
/bureau 联网状态 and ledger within a second or two, and a blacklist entry added at the platform's /police is
refused at the site's gates.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gate_service.config import Settings


def _cli(data_dir: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "gate_service", *args, "--data-dir", str(data_dir)],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service at {url} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not become healthy")


def busy_ports(host: str, ports: tuple[int, ...]) -> list[int]:
    """The ports a server could not bind now. Checked before anything starts: a site dying on a busy port once
    the platform is up showed up as its traceback and the platform stopping, not as a reason."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            # As aiohttp binds: a port left in TIME_WAIT by a finished run is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


def _put(url: str, token: str, body: dict) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10):
        pass


def run(settings: Settings) -> int:
    from gate_service.demo import CHECKPOINTS, DEMO_GATES, ENTERPRISES

    root = Path(settings.data_dir) / "two-tier"
    p_dir, s_dir = root / "platform", root / "site"
    p_dir.mkdir(parents=True, exist_ok=True)
    s_dir.mkdir(parents=True, exist_ok=True)
    host, p_port, s_port = settings.host, settings.port, settings.port + 1
    p_url, s_url = f"http://{host}:{p_port}", f"http://{host}:{s_port}"
    busy = busy_ports(host, (p_port, s_port))
    if busy:
        print(f"[联网演示] 端口已被占用 port(s) in use: {', '.join(map(str, busy))}. 联网演示需要 --port 及 --port + 1 "
              f"两个端口 (the demo serves the platform on --port and the site on --port + 1); 请换一个 --port.",
              file=sys.stderr, flush=True)
        return 2
    env = {**os.environ, "CLEANGATE_LOG_LEVEL": os.environ.get("CLEANGATE_LOG_LEVEL", "WARNING")}
    procs: list[subprocess.Popen] = []

    def stop(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (systemd, timeout) ends both children as Ctrl-C does

    signal.signal(signal.SIGTERM, stop)
    try:
        print(f"[联网演示] 平台 platform {p_url} (data: {p_dir})", flush=True)
        platform = subprocess.Popen([sys.executable, "-m", "gate_service", "serve", "--host", host, "--port",
                                     str(p_port), "--data-dir", str(p_dir)], env=env)
        procs.append(platform)
        _wait(p_url, platform)
        admin = _cli(p_dir, "token", "create", "--role", "admin", "--name", "演示 平台管理员")
        for ident, name, industry, county, zone, _retrofit, grade in ENTERPRISES:
            _put(f"{p_url}/api/v1/enterprises/{ident}", admin, {"name": name, "industry": industry, "county": county,
                                                                 "zone_id": zone, "grade": grade})
            _put(f"{p_url}/api/v1/gates/{ident}-1", admin, {"name": f"{name} 1号门", "enterprise_id": ident,
                                                            "zone_id": zone})
        for ident, name in CHECKPOINTS:
            _put(f"{p_url}/api/v1/gates/{ident}", admin, {"name": name, "zone_id": "city"})
        gate_args = [a for g in DEMO_GATES for a in ("--gate", g)]
        site_token = _cli(p_dir, "token", "create", "--role", "site", *gate_args, "--name", "演示站点")
        ecology = _cli(p_dir, "token", "create", "--role", "ecology", "--name", "演示 生态环境局")
        police = _cli(p_dir, "token", "create", "--role", "police", "--name", "演示 交警")
        print("\n".join([
            "", "=== 联网演示 two-tier demo ===",
            f"平台 platform: {p_url}/bureau (联网状态, 台账)  {p_url}/police (黑名单 → 站点)",
            f"  admin    {admin}", f"  ecology  {ecology}", f"  police   {police}",
            f"站点 site ({', '.join(DEMO_GATES)}): {s_url}/kiosk — its own tokens are printed below", "",
        ]), flush=True)
        site = subprocess.Popen(
            [sys.executable, "-m", "gate_service", "serve", "--demo", "--host", host, "--port", str(s_port),
             "--data-dir", str(s_dir)],
            env={**env, "CLEANGATE_PLATFORM_URL": p_url, "CLEANGATE_PLATFORM_TOKEN": site_token,
                 "CLEANGATE_LINK_MAX_BACKOFF_S": "10"})
        procs.append(site)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        ended = next(name for name, p in zip(("平台 platform", "站点 site"), procs, strict=False) if p.poll() is not None)
        print(f"[联网演示] {ended} 已退出 exited ({next(p.returncode for p in procs if p.poll() is not None)}); "
              "停止演示 stopping the demo", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
