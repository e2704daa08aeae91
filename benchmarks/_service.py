"""A real `gate-service serve` in a subprocess, on its own data dir and port, for the benchmarks."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = Path(os.environ.get("CLEANGATE_EASYPR_DIR", ROOT.parent / "shared" / "data" / "plates" / "easypr"))


def free_port(span: int = 1) -> int:
    """A loopback port p free now, with p+1 .. p+span-1 free too (the two-tier demo serves on --port and
    --port + 1: the OS's pick alone says nothing of the next port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port + span > 65536:
                continue
            try:
                for extra in range(1, span):
                    with socket.socket() as t:
                        t.bind(("127.0.0.1", port + extra))
            except OSError:
                continue
            return port


class Service:
    def __init__(self, data_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.owned = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="cg-bench-"))
        self.port = free_port()
        self.env = {**os.environ, "CLEANGATE_LOG_LEVEL": "WARNING", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "gate_service", *args, "--data-dir", str(self.data_dir)],
                             env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> float:
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate_service", "serve", "--port", str(self.port), "--data-dir",
             str(self.data_dir)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        asyncio.run(self.wait_healthy())
        return time.perf_counter() - started

    async def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("service did not become healthy")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def close(self) -> None:
        self.stop()
        if self.owned:
            # The embedded PostgreSQL outlives a killed service; stop it before removing its files.
            pg = self.data_dir / "pg"
            if (pg / "postmaster.pid").exists():
                from pgserver._commands import pg_ctl

                try:
                    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pg, user="pgserver" if os.geteuid() == 0 else None)
                except Exception:  # noqa: BLE001 - best effort cleanup
                    pass
            shutil.rmtree(self.data_dir, ignore_errors=True)
