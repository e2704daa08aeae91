"""Benchmark: N RTSP cameras at 25 fps 1080p pulled by one running service, two ways of recording them.

    .venv/bin/python benchmarks/cameras.py [--cameras 1 2] [--seconds 40]

Each camera is GStreamer's RTSP server (Debian's python3-gi, as in tests/cameras) looping a 1920x1080 25 fps
H.264 lane video made from gate photos (three vehicles, the lane empty between them). The service pulls each
camera with its ffmpeg and reads 5 frames/s (motion-gated) in both modes:

- ``copy``: roles read+record — the camera's own packets written into segments by stream copy (this issue);
- ``reencode``: role read only — the read frames recorded by the kiosk-frame recorder, re-encoded to MPEG-4 at
  5 fps (today's path for frames that reach the service).

Printed per mode and N: CPU seconds per second per camera of the service process and of its ffmpeg children
(from /proc, over the measuring window), what was recorded (frames/s, MB/min), frames read, and
frames→decision latency (first frame of a vehicle → its ledger row, p50/max). The RTSP servers' own CPU is the
cameras', not counted. ``reencode`` is the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._service import Service  # noqa: E402
from tests.cameras.conftest import FPS, SYSTEM_PYTHON, scenes  # noqa: E402

HERE = Path(__file__).resolve().parents[1] / "tests" / "cameras"
TICK = os.sysconf("SC_CLK_TCK")


def make_1080p(path: Path, repeat: int = 3) -> float:
    # Repeated so that the measuring window sits inside one pass of the file: GStreamer's looping file source
    # ends the RTSP session at the end of the file (ffmpeg then reconnects, as from a camera that restarted).
    parts, _ = scenes()
    parts = parts * repeat
    proc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s",
         "1920x1080", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", str(FPS),
         "-b:v", "4M", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for picture, seconds in parts:
        data = cv2.resize(picture, (1920, 1080)).tobytes()
        for _ in range(int(seconds * FPS)):
            proc.stdin.write(data)
    proc.stdin.close()
    proc.wait()
    return sum(s for _, s in parts)


def rtsp_server(video: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(video), "h264", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        raise RuntimeError("RTSP server did not start")
    return proc, line.split()[1]


def cpu_ticks(pid: int, *, reaped: bool = False) -> int:
    """utime + stime of a process (0 once gone); with ``reaped`` its waited-for children's (cutime + cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return int(fields[13]) + int(fields[14]) if reaped else int(fields[11]) + int(fields[12])


def ffmpeg_ticks(service: int, before: dict[int, int] | None = None) -> tuple[dict[int, int], int]:
    """Live ffmpeg children's ticks, and the ticks of those that ended (a reconnect) since ``before``."""
    live = {p: cpu_ticks(p) for p in children(service)
            if b"ffmpeg" in Path(f"/proc/{p}/cmdline").read_bytes()}
    return live, cpu_ticks(service, reaped=True)


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


async def run(mode: str, n: int, seconds: float, video: Path) -> dict:
    servers = [rtsp_server(video) for _ in range(n)]
    service = Service()
    try:
        await asyncio.to_thread(service.start)
        admin = {"Authorization": "Bearer " + service.cli("token", "create", "--role", "admin")}
        async with aiohttp.ClientSession() as session:
            for k, (_, url) in enumerate(servers):
                await session.put(f"{service.url}/api/v1/gates/cam-{k}", headers=admin,
                                  json={"name": f"门{k}", "zone_id": "city"})
                roles = ["read", "record"] if mode == "copy" else ["read"]
                resp = await session.put(f"{service.url}/api/v1/gates/cam-{k}/cameras/c{k}", headers=admin,
                                         json={"rtsp_url": url, "roles": roles, "read_fps": 5})
                assert resp.status == 201, await resp.text()
            await asyncio.sleep(5)  # connected, reader loaded
            assert service.proc is not None
            pid = service.proc.pid
            live0, reaped0 = ffmpeg_ticks(pid)
            start_service = cpu_ticks(pid)
            started = time.monotonic()
            await asyncio.sleep(seconds)
            wall = time.monotonic() - started
            used_service = (cpu_ticks(pid) - start_service) / TICK
            live1, reaped1 = ffmpeg_ticks(pid)
            # Still running: their growth; ended in the window (reaped): their total less what they had at the
            # start; started in the window: all of theirs.
            ended = [p for p in live0 if p not in live1]
            used_ff = (sum(t - live0.get(p, 0) for p, t in live1.items())
                       + (reaped1 - reaped0) - sum(live0[p] for p in ended)) / TICK
            async with session.get(f"{service.url}/metrics", headers=admin) as resp:
                metrics = await resp.text()
            states = []
            for k in range(n):
                async with session.get(f"{service.url}/api/v1/gates/cam-{k}/cameras", headers=admin) as resp:
                    states.append((await resp.json())["cameras"][0]["state"])
            if not all(s and s["connected"] and not s["reconnects"] for s in states):
                print(f"  ({mode} N={n}: not every camera streamed: {states})", file=sys.stderr)
        read = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("cleangate_frames_read_total{"))
        written = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("cleangate_video_frames_written_total{"))
        import asyncpg

        dsn = None
        pg = service.data_dir / "pg"
        if pg.exists():
            from pgserver import get_server

            dsn = get_server(pg, cleanup_mode=None).get_uri()
        rows, segs = [], []
        if dsn:
            conn = await asyncpg.connect(dsn)
            try:
                rows = await conn.fetch("SELECT extract(epoch FROM recorded_at - at) AS s FROM passages")
                segs = await conn.fetch("SELECT bytes, frames, extract(epoch FROM ended_at - started_at) AS s "
                                        "FROM video_segments WHERE bytes > 0")
            finally:
                await conn.close()
        spool = sum(p.stat().st_size for p in (service.data_dir / "spool").rglob("*.mp4"))
        latencies = [float(r["s"]) for r in rows]
        seg_seconds = sum(float(s["s"] or 0) for s in segs)
        seg_bytes = sum(s["bytes"] for s in segs) + spool
        return {"mode": mode, "n": n, "wall": wall, "service_cpu": used_service / wall / n,
                "ffmpeg_cpu": used_ff / wall / n, "read_per_s": read / wall / n,
                "recorded_fps": (FPS if mode == "copy" else (written / wall / n)),
                "mb_per_min": (seg_bytes / 1e6) / max(1e-6, (seg_seconds or wall * n)) * 60 / 1,
                "passages": len(latencies),
                "latency_p50": statistics.median(latencies) if latencies else None,
                "latency_max": max(latencies) if latencies else None}
    finally:
        service.close()
        for proc, _ in servers:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cg-bench-cam-") as tmp:
        video = Path(tmp) / "lane-1080p.mp4"
        loop = make_1080p(video)
        print(f"source: 1920x1080 H.264 {FPS} fps, lane loop {loop:.0f} s; measuring {args.seconds:.0f} s per run; "
              f"{os.cpu_count()} cores")
        print(f"{'mode':<9} {'N':>2} {'service CPU/cam':>15} {'ffmpeg CPU/cam':>14} {'total/cam':>9} "
              f"{'reads/s/cam':>11} {'rec fps':>7} {'MB/min':>7} {'passages':>8} {'lat p50':>7} {'lat max':>7}")
        for n in args.cameras:
            for mode in ("reencode", "copy"):
                r = asyncio.run(run(mode, n, args.seconds, video))
                lat = (f"{r['latency_p50']:7.2f} {r['latency_max']:7.2f}" if r["latency_p50"] is not None
                       else f"{'-':>7} {'-':>7}")
                print(f"{r['mode']:<9} {r['n']:>2} {r['service_cpu']:15.3f} {r['ffmpeg_cpu']:14.3f} "
                      f"{r['service_cpu'] + r['ffmpeg_cpu']:9.3f} {r['read_per_s']:11.2f} {r['recorded_fps']:7.1f} "
                      f"{r['mb_per_min']:7.1f} {r['passages']:>8} {lat}", flush=True)
        print("CPU in core-seconds per second per camera (1.0 = one core busy). reencode = today's path (the read "
              "frames re-encoded at 5 fps), the baseline; copy = the camera's own 25 fps stream kept by stream copy.")


if __name__ == "__main__":
    main()
