"""The backup scripts for real: a throwaway PostgreSQL cluster archiving WAL through deploy/backup/archive-wal.sh,
a base backup by base-backup.sh, passages written after it, then restore-drill.sh restores base + WAL into a
scratch directory on another port, runs `gate-service ledger verify` and reports the counts - all of them,
including the passages that only exist in archived WAL.

Needs PostgreSQL server binaries (Debian's /usr/lib/postgresql/<v>/bin or pgserver's); skipped otherwise.
Everything stays on Unix sockets in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from tests.waiting import until

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup"


def _pg_bin() -> Path | None:
    candidates = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
    try:
        import pgserver

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    for c in candidates:
        if all((c / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup", "pg_verifybackup", "psql")):
            return c
    return None


PG_BIN = _pg_bin()
if os.geteuid() == 0:
    try:
        PG_USER = pwd.getpwnam("postgres").pw_name
    except KeyError:
        PG_USER = ""
else:
    PG_USER = pwd.getpwuid(os.geteuid()).pw_name

pytestmark = [
    pytest.mark.skipif(PG_BIN is None, reason="no PostgreSQL server binaries (initdb, pg_basebackup, ...) found"),
    pytest.mark.skipif(not PG_USER, reason="running as root without a 'postgres' OS user to run PostgreSQL"),
    pytest.mark.skipif(shutil.which("runuser") is None and os.geteuid() == 0, reason="runuser missing"),
]


def _as_pg(cmd: list[str], env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if os.geteuid() == 0:
        keep = ",".join(sorted((env or {}).keys()))
        cmd = ["runuser", "-u", PG_USER, "--", "env", *[f"{k}={v}" for k, v in (env or {}).items()], *cmd]
        del keep
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]


@pytest.fixture
def cluster():  # type: ignore[no-untyped-def]
    tmp = Path(tempfile.mkdtemp(prefix="cg-bk-"))  # short: Unix socket paths are limited to ~100 bytes
    if os.geteuid() == 0:
        shutil.chown(tmp, PG_USER)
    os.chmod(tmp, 0o755)
    src, backup = tmp / "src", tmp / "backup"
    backup.mkdir()
    if os.geteuid() == 0:
        shutil.chown(backup, PG_USER)
    port = 56000 + os.getpid() % 1000
    env = {"CLEANGATE_BACKUP_DIR": str(backup), "PG_BIN": str(PG_BIN), "CLEANGATE_BACKUP_ENV": "/nonexistent",
           "PGHOST": str(tmp), "PGPORT": str(port), "PGUSER": PG_USER}
    r = _as_pg([str(PG_BIN / "initdb"), "-D", str(src), "-A", "trust", "-U", PG_USER, "--no-sync", "-E", "UTF8"])
    assert r.returncode == 0, r.stderr
    archive = f"CLEANGATE_BACKUP_DIR={backup} PG_BIN={PG_BIN} CLEANGATE_BACKUP_ENV=/nonexistent {BACKUP}/archive-wal.sh %p %f"
    with open(src / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = ''\nunix_socket_directories = '{tmp}'\n"
            "wal_level = replica\narchive_mode = on\n"
            f"archive_command = '{archive}'\nmax_wal_senders = 4\nfsync = off\nshared_buffers = 64MB\n"
        )
    r = _as_pg([str(PG_BIN / "pg_ctl"), "-D", str(src), "-l", str(tmp / "src.log"), "-w", "start"])
    assert r.returncode == 0, r.stderr + (tmp / "src.log").read_text()
    try:
        yield {"tmp": tmp, "port": port, "env": env, "backup": backup,
               "dsn": f"postgresql:///cleangate?host={tmp}&port={port}&user={PG_USER}"}
    finally:
        _as_pg([str(PG_BIN / "pg_ctl"), "-D", str(src), "-m", "immediate", "stop"])
        shutil.rmtree(tmp, ignore_errors=True)


async def _passages(client, headers, n: int, start: datetime) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        resp = await client.post("/api/v1/gates/g-drill/passages", headers=headers, json={
            "plate": "晋LA1234", "direction": "in" if i % 2 == 0 else "out",
            "at": (start + timedelta(seconds=i)).isoformat()})
        assert resp.status == 201, await resp.text()


async def test_base_backup_wal_archive_and_restore_drill(cluster, aiohttp_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gate_service import auth, keys
    from gate_service.app import create_app
    from gate_service.config import Settings

    conn = await asyncpg.connect(cluster["dsn"].replace("/cleangate?", "/postgres?"))
    await conn.execute("CREATE DATABASE cleangate")
    await conn.close()

    app = create_app(Settings(database_url=cluster["dsn"], data_dir=tmp_path / "data", run_scheduler=False,
                              pool_max=3, rate_limits="off"))
    client = await aiohttp_client(app)
    _, secret = await auth.create_token(app[keys.POOL], "admin", name="drill")
    admin = {"Authorization": f"Bearer {secret}"}
    for path, body in (("/api/v1/enterprises/e-drill", {"name": "演练企业", "industry": "steel"}),
                       ("/api/v1/gates/g-drill", {"name": "演练门", "zone_id": "city", "enterprise_id": "e-drill"}),
                       ("/api/v1/vehicles/晋LA1234", {"fuel_type": "electric", "vehicle_class": "heavy_truck"})):
        assert (await client.put(path, json=body, headers=admin)).status == 201
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    await _passages(client, admin, 5, start)

    r = await asyncio.to_thread(_as_pg, [str(BACKUP / "base-backup.sh")], cluster["env"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(cluster["backup"] / "base" / "2"))

    # Written after the base backup: only the archived WAL holds these.
    await _passages(client, admin, 3, start + timedelta(minutes=1))
    pool = app[keys.POOL]
    segment = await pool.fetchval("SELECT pg_walfile_name(pg_current_wal_lsn())")
    await pool.execute("SELECT pg_switch_wal()")
    await until(lambda: (cluster["backup"] / "wal" / segment).exists(), timeout=60, what="WAL segment archived")
    await client.close()

    gate_service = Path(sys.executable).parent / "gate-service"
    drill_env = {**cluster["env"], "CLEANGATE_PG_OS_USER": PG_USER, "CLEANGATE_GATE_SERVICE": str(gate_service),
                 "TMPDIR": str(cluster["tmp"])}
    r = await asyncio.to_thread(
        subprocess.run, [str(BACKUP / "restore-drill.sh"), "--port", str(cluster["port"] + 1)],
        env={**os.environ, **drill_env}, capture_output=True, text=True, timeout=180)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert "ledger intact: 8 passages checked" in r.stdout, r.stdout
    counts = dict(line.rsplit(None, 1) for line in r.stdout.splitlines()
                  if line and not line.startswith(("==", "ledger", "latest")))
    assert counts["passages"] == "8" and counts["enterprises"] == "1" and counts["gates"] == "1"
    assert int(counts["audit_log"]) >= 3
    assert "restore drill OK" in r.stderr
    assert not list(cluster["tmp"].glob("cleangate-drill.*")), "the scratch copy was not removed"


def test_archive_wal_is_idempotent_and_refuses_a_different_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "CLEANGATE_BACKUP_DIR": str(tmp_path / "b"), "PG_BIN": str(PG_BIN),
           "CLEANGATE_BACKUP_ENV": "/nonexistent"}
    seg = tmp_path / "000000010000000000000001"
    seg.write_bytes(b"x" * 1024)
    run = [str(BACKUP / "archive-wal.sh"), str(seg), seg.name]
    assert subprocess.run(run, env=env).returncode == 0
    assert (tmp_path / "b" / "wal" / seg.name).read_bytes() == seg.read_bytes()
    assert subprocess.run(run, env=env).returncode == 0  # retried by PostgreSQL: fine
    seg.write_bytes(b"y" * 1024)
    assert subprocess.run(run, env=env, capture_output=True).returncode != 0
    assert not list((tmp_path / "b" / "wal").glob(".*tmp*"))
