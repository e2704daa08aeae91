"""Demo mode (`gate-service serve --demo`, what `scripts/run` starts): a sample registry and a simulated kiosk.

A newcomer should see the service do its job without a camera: enterprises in the 7 development zones and the
city, gates, vehicles of every class and fuel, two blacklisted lorries, an orange alert, and a simulated kiosk
that streams real street photos (the EasyPR set beside the repository) through the real plate reader into the
gates, so passages are decided and recorded as they would be at a barrier. Everything it writes is ordinary
data through the ordinary code paths; it is idempotent across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import web

from gate_service import auth, keys
from gate_service.auth import Principal
from gate_service.policy.model import SHANGHAI
from gate_service.registry import store as registry
from plate_reader import plates

log = logging.getLogger("cleangate.demo")

# (id, name, industry, county, zone, retrofit completed on, grade)
ENTERPRISES = [
    ("lf-steel", "临汾经济开发区某钢铁有限公司", "steel", "尧都区", "linfen-edz", None, "B"),
    ("ht-coking", "洪洞某焦化有限公司", "coking", "洪洞县", "hongtong", "2024-09-20", "B-"),
    ("xf-steel", "襄汾某钢铁集团", "steel", "襄汾县", "xiangfen", None, "A"),
    ("qw-nonferrous", "曲沃某有色金属有限公司", "non_ferrous", "曲沃县", "quwo", "2024-08-01", "B"),
    ("hm-cement", "侯马某水泥有限公司", "cement", "侯马市", "houma", "2024-10-15", "C"),
    ("hz-coal", "霍州某煤业有限公司", "coal", "霍州市", "huozhou", "2024-09-01", "B"),
    ("yd-carbon", "尧都高新区某炭素有限公司", "carbon", "尧都区", "yaodu-hitech", None, "D"),
    ("city-logistics", "临汾市区某物流园", "logistics", "尧都区", "city", None, None),
    ("xn-coal", "乡宁某煤矿", "coal", "乡宁县", "other", "2024-05-01", "leading"),
]

CHECKPOINTS = [("city-north", "市区北出入口检查站"), ("city-south", "市区南出入口检查站")]

# Vehicle profiles cycled over the photo plates: every class and fuel appears.
PROFILES = [
    ("heavy_truck", "diesel", 5), ("heavy_truck", "diesel", 4), ("heavy_truck", "diesel", 3),
    ("heavy_truck", "electric", None), ("heavy_truck", "gas", 6), ("heavy_truck", "hydrogen", None),
    ("medium_truck", "diesel", 6), ("light_truck", "petrol", 5), ("concrete_mixer", "diesel", 5),
    ("concrete_mixer", "electric", None), ("muck_truck", "diesel", 6), ("muck_truck", "electric", None),
    ("logistics", "diesel", 6), ("logistics", "electric", None), ("bus", "phev", 6), ("car", "petrol", 6),
    ("car", "hybrid", 6), ("car", "methanol", 5), ("nonroad", "diesel", 2), ("other", "diesel", 4),
]

DEMO_GATES = ("xf-steel-1", "hz-coal-1", "city-north")


@dataclass
class Photo:
    path: Path
    plate: str
    color: str


def photo_dir() -> Path | None:
    configured = os.environ.get("CLEANGATE_DEMO_PHOTOS")
    candidates = [Path(configured)] if configured else []
    root = Path(__file__).resolve().parents[1]
    candidates += [root.parent / "shared" / "data" / "plates" / "easypr", root / "var" / "demo-photos"]
    for folder in candidates:
        if (folder / "labels.csv").exists():
            return folder
    return None


def load_photos(folder: Path | None) -> list[Photo]:
    if folder is None:
        return []
    with open(folder / "labels.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Photo(folder / r["file"], r["plate"], r["color"]) for r in rows if plates.is_valid(r["plate"])]


def _vehicle_for(index: int, plate: str, color: str) -> dict[str, Any]:
    cls, fuel, stage = PROFILES[index % len(PROFILES)]
    parsed = plates.parse(plate)
    if parsed.new_energy:
        fuel, stage = ("electric" if parsed.pure_electric else "phev"), None
    return {
        "plate_color": color, "fuel_type": fuel, "vehicle_class": cls, "emission_stage": stage,
        "engine_no": f"DEMO{index:05d}", "haulier": ["汾河物流", "晋南运输", "尧都车队"][index % 3],
        "registered_on": (date(2016, 1, 1) + timedelta(days=97 * index)).isoformat(),
        "extra": {"demo": True},
    }


async def load_registry(app: web.Application, photos: list[Photo]) -> dict[str, Any]:
    pool = app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        for ident, name, industry, county, zone, retrofit, grade in ENTERPRISES:
            await registry.upsert_enterprise(conn, ident, {
                "name": name, "industry": industry, "county": county, "zone_id": zone,
                "retrofit_completed_on": retrofit, "grade": grade})
            await registry.upsert_gate(conn, f"{ident}-1", {"name": f"{name} 1号门", "enterprise_id": ident,
                                                            "zone_id": zone})
        for ident, name in CHECKPOINTS:
            await registry.upsert_gate(conn, ident, {"name": name, "enterprise_id": None, "zone_id": "city"})
        registered = 0
        for i, photo in enumerate(photos):
            if i % 6 == 5:
                continue  # some vehicles stay unregistered: the guard is told to register them
            await registry.upsert_vehicle(conn, photo.plate, _vehicle_for(i, photo.plate, photo.color))
            registered += 1
        # Every class and fuel at least once, on Linfen plates, whatever photos there are.
        for i, (cls, fuel, stage) in enumerate(PROFILES):
            plate = f"晋L{'D' if fuel == 'electric' and cls == 'car' else 'A'}{7000 + i:04d}"
            if plates.is_valid(plate):
                await registry.upsert_vehicle(conn, plate, {
                    "plate_color": "green" if len(plate) == 8 else ("blue" if cls == "car" else "yellow"),
                    "fuel_type": fuel, "vehicle_class": cls, "emission_stage": stage, "extra": {"demo": True}})
                registered += 1
        now = datetime.now(timezone.utc)
        alert = await conn.fetchval("SELECT count(*) FROM alerts WHERE declared_by = 'demo' AND ends_at > $1", now)
        if not alert:
            await conn.execute(
                "INSERT INTO alerts (level, starts_at, ends_at, note, declared_by) VALUES ('orange', $1, $2, $3, 'demo')",
                now - timedelta(hours=1), now + timedelta(days=1), "演示：橙色预警，重点行业企业禁用国四及以下重型柴油货车",
            )
    return {"enterprises": len(ENTERPRISES), "gates": len(ENTERPRISES) + len(CHECKPOINTS),
            "vehicles": registered}


async def load_blacklist(app: web.Application, photos: list[Photo], police_token_id: int) -> int:
    try:
        import blacklist
    except ImportError:
        return 0
    service = app.get(blacklist.APP_KEY)
    if service is None or not photos:
        return 0
    who = Principal(token_id=police_token_id, role="police", name="demo-police")
    count = 0
    for photo, reason in zip(photos[3:5], ("obd_tampering", "device_removed"), strict=False):
        await service.add(blacklist.Listing(plate=photo.plate, reason=reason, note="演示数据",
                                            checkpoint="市区北出入口"), who)
        count += 1
    return count


async def demo_tokens(app: web.Application) -> dict[str, tuple[int, str]]:
    pool = app[keys.POOL]
    made = {}
    for role, kw in (("admin", {}), ("kiosk", {"gate_id": DEMO_GATES[0]}), ("police", {}), ("ecology", {}),
                     ("enterprise", {"enterprise_id": "xf-steel"})):
        made[role] = await auth.create_token(pool, role, name=f"demo-{role}", **kw)
    return made


def _frames_of(photo: Photo | None, rng: random.Random, count: int) -> list[bytes]:
    if photo is not None:
        image = cv2.imread(str(photo.path))
    else:
        from plate_reader import synth

        text, color, double = synth.make_plate(rng.choice(synth.SYNTH_KINDS), rng)
        image = synth.place_in_frame(synth.render_plate(text, color, double), rng)
    if image is None:
        return []
    out = []
    for i in range(count):
        # Consecutive video frames differ a little: shift a pixel and re-encode.
        shifted = np.roll(image, i, axis=1)
        ok, buf = cv2.imencode(".jpg", shifted, [cv2.IMWRITE_JPEG_QUALITY, 90 - i])
        if ok:
            out.append(buf.tobytes())
    return out


async def simulated_kiosk(app: web.Application, photos: list[Photo], *, fps: float = 5.0) -> None:
    """Drive vehicles past the demo gates for ever: a few frames each, then an empty lane."""
    hub = app[keys.GATES]
    rng = random.Random(20241001)
    gates = list(DEMO_GATES)
    blank = cv2.imencode(".jpg", np.full((480, 640, 3), 90, np.uint8))[1].tobytes()
    i = 0
    while True:
        photo = photos[i % len(photos)] if photos else None
        gate_id = gates[i % len(gates)]
        ingest = hub.ingest(gate_id)
        for data in _frames_of(photo, rng, 5):
            try:
                result = await ingest.submit(data, direction="in" if i % 4 else "out")
            except Exception as exc:  # noqa: BLE001 - the demo goes on past a bad photo
                log.warning("demo frame refused: %s", exc)
                break
            for passage in result.passages:
                _say(gate_id, passage)
            await asyncio.sleep(1 / fps)
        for _ in range(2):  # the lane empties; the tracker settles what it saw
            with contextlib.suppress(Exception):
                for passage in (await ingest.submit(blank + bytes([i % 256]))).passages:
                    _say(gate_id, passage)
            await asyncio.sleep(1.5)
        i += 1


def _say(gate_id: str, passage: dict[str, Any]) -> None:
    verdict = "放行" if passage["decision"] == "allow" else "禁止通行"
    reasons = "；".join(f"{r['message']}〔{r['clause']}〕" for r in passage["reasons"] if r["effect"] == "deny")
    print(f"[演示] {gate_id} {passage['plate']} → {verdict}" + (f"：{reasons}" if reasons else ""), flush=True)


async def demo_context(app: web.Application) -> AsyncIterator[None]:
    folder = photo_dir()
    photos = load_photos(folder)
    summary = await load_registry(app, photos)
    tokens = await demo_tokens(app)
    summary["blacklisted"] = await load_blacklist(app, photos, tokens["police"][0])
    settings = app[keys.SETTINGS]
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "=== cleangate 演示模式 / demo mode ===",
        f"登记: {summary['enterprises']} 家企业, {summary['gates']} 个门岗, {summary['vehicles']} 辆车, "
        f"{summary['blacklisted']} 条黑名单; 橙色预警进行中",
        f"模拟门岗终端: {', '.join(DEMO_GATES)}，图片: {folder or '合成车牌 (synthetic plates)'}",
        f"健康检查: {base}/healthz    控制台: {base}/kiosk  {base}/police  {base}/bureau",
        "令牌 tokens (Authorization: Bearer ...):",
        *[f"  {role:<10} {secret}" for role, (_, secret) in tokens.items()],
        "",
    ]
    print("\n".join(lines), flush=True)
    task = asyncio.ensure_future(simulated_kiosk(app, photos))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def local_today() -> date:
    return datetime.now(SHANGHAI).date()
