"""Demo mode (`gate-service serve --demo`, what `scripts/run` starts): a sample registry and a simulated kiosk.

A newcomer should see the service do its job without a camera: enterprises in the 7 development zones and the
city, gates, vehicles of every class and fuel, two blacklisted lorries, an orange alert, and a simulated kiosk
that streams real street photos (the EasyPR set beside the repository) through the real plate reader into the
gates, so passages are decided and recorded as they would be at a barrier, plus a history of passages (cargo,
tonnes) inside the 2024-25 campaign, so campaign rules, targets and alert measures show although today no
campaign runs. Everything it writes is ordinary data through the ordinary code paths; it is idempotent across
restarts (each run's tokens are new; the previous run's are revoked).
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
    ("hm-cement", "侯马某水泥有限公司", "cement", "侯马市", "houma", "2024-09-15", "C"),
    ("hz-coal", "霍州某煤业有限公司", "coal", "霍州市", "huozhou", "2024-09-01", "B"),
    ("yd-carbon", "尧都高新区某炭素有限公司", "carbon", "尧都区", "yaodu-hitech", None, "D"),
    ("city-logistics", "临汾市区某物流园", "logistics", "尧都区", "city", None, None),
    ("xn-coal", "乡宁某煤矿", "coal", "乡宁县", "other", "2024-05-01", "leading"),
]

CHECKPOINTS = [("city-north", "市区北出入口检查站"), ("city-south", "市区南出入口检查站")]

# Every class and fuel once, on Linfen (晋L) plates: (class, fuel, emission stage).
PROFILES = [
    ("heavy_truck", "diesel", 5), ("heavy_truck", "diesel", 4), ("heavy_truck", "diesel", 3),
    ("heavy_truck", "electric", None), ("heavy_truck", "gas", 6), ("heavy_truck", "hydrogen", None),
    ("medium_truck", "diesel", 6), ("light_truck", "petrol", 5), ("concrete_mixer", "diesel", 5),
    ("concrete_mixer", "electric", None), ("muck_truck", "diesel", 6), ("muck_truck", "electric", None),
    ("logistics", "diesel", 6), ("logistics", "electric", None), ("bus", "phev", 6), ("car", "petrol", 6),
    ("car", "hybrid", 6), ("car", "methanol", 5), ("nonroad", "diesel", 2), ("other", "diesel", 4),
]
# What a photographed plate can plausibly be: small vehicles carry blue plates, big ones yellow (GA 36-2018).
BLUE_PROFILES = [("car", "petrol", 6), ("logistics", "diesel", 6), ("car", "hybrid", 6), ("light_truck", "petrol", 5),
                 ("car", "petrol", 5), ("logistics", "diesel", 5), ("car", "methanol", 6)]
YELLOW_PROFILES = [("heavy_truck", "diesel", 5), ("heavy_truck", "diesel", 6), ("heavy_truck", "diesel", 4),
                   ("heavy_truck", "gas", 6), ("heavy_truck", "diesel", 3), ("medium_truck", "diesel", 6),
                   ("concrete_mixer", "diesel", 5), ("muck_truck", "diesel", 6), ("bus", "diesel", 5)]
NEW_ENERGY = ("electric", "hydrogen", "phev")
SMALL = ("car", "light_truck", "logistics")
# Registration years an emission stage was sold in (China III 2008-, IV 2013-, V 2017-, VI 2021-).
# Up to 2024: the demo's history starts in October 2024, and no vehicle passes before it is registered.
STAGE_YEARS = {None: (2019, 2024), 2: (2005, 2007), 3: (2009, 2012), 4: (2013, 2016), 5: (2017, 2020),
               6: (2021, 2024)}
HAULIERS = ["汾河物流有限公司", "晋南运输有限公司", "尧都车队", "临汾港务物流"]

# The heavy-truck fleet that hauled for the demo enterprises in the 2024-25 campaign (history below):
# new-energy trucks carry 8-character yellow-green plates ending in D (electric) or F.
FLEET = ([(f"晋L{10001 + i}D", "electric", None) for i in range(8)] + [(f"晋L{20001 + i}F", "hydrogen", None) for i in range(2)]
         + [(f"晋L{30001 + i}", "diesel", 6) for i in range(8)] + [(f"晋L{40001 + i}", "diesel", 5) for i in range(5)]
         + [(f"晋L{50001 + i}", "diesel", 4) for i in range(3)] + [(f"晋L{60001 + i}", "gas", 6) for i in range(2)])
CARGO = {"steel": ("铁矿石", "钢材", "焦炭"), "coking": ("原煤", "焦炭"), "non_ferrous": ("氧化铝", "电解铝"),
         "cement": ("水泥熟料", "石灰石"), "coal": ("原煤", "精煤"), "carbon": ("石油焦", "炭块"),
         "logistics": ("日用百货", "建材")}
# History: passages dated inside the 2024-25 campaign (2024-10-01 .. 2025-03-31), so its rules, targets and
# alert measures show today, when no plan has a campaign running; and an orange alert inside it.
CAMPAIGN = (date(2024, 10, 1), date(2025, 3, 31))
PAST_ALERT = ("2024-12-10T00:00:00+08:00", "2024-12-14T00:00:00+08:00")
# The console links open the last quarter of 2024: inside one target window (steel and cement 60%, 2024) and
# holding the December alert. (Coal's 80% is 2025's: 2025-01-01 .. 2025-03-31 shows it.)
REPORT_PERIOD = "from=2024-10-01&to=2024-12-31"
# Each enterprise's share of new-energy trips in the history: the cement works misses its 60% in 2024, the coal
# mine of Huozhou its 80% in 2025; zone works that had not retrofitted admit only new energy in the campaign.
CLEAN_SHARE = {"lf-steel": 0.5, "ht-coking": 0.4, "xf-steel": 0.7, "qw-nonferrous": 0.85, "hm-cement": 0.4,
               "hz-coal": 0.65, "yd-carbon": 0.3, "city-logistics": 0.3, "xn-coal": 0.9}

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


def _registered_on(index: int, stage: int | None) -> str:
    first, last = STAGE_YEARS.get(stage, (2015, 2020))
    year = first + index % (last - first + 1)
    return date(year, 1 + (index * 5) % 12, 1 + (index * 7) % 28).isoformat()


def _vehicle_for(index: int, plate: str, color: str) -> dict[str, Any]:
    """A vehicle the photographed plate could really be: its colour and new-energy letter decide the kind."""
    parsed = plates.parse(plate)
    if parsed.new_energy:
        cls = "car" if len(plate) == 8 and plate[2] in "DF" else "heavy_truck"
        fuel, stage = ("electric" if parsed.pure_electric else "phev"), None
    else:
        table = YELLOW_PROFILES if color == "yellow" else BLUE_PROFILES
        cls, fuel, stage = table[index % len(table)]
    return {
        "plate_color": color, "fuel_type": fuel, "vehicle_class": cls, "emission_stage": stage,
        "engine_no": f"DEMO{index:05d}", "haulier": HAULIERS[index % len(HAULIERS)] if cls not in ("car", "bus") else None,
        "registered_on": _registered_on(index, stage), "extra": {"demo": True},
    }


def _linfen_plate(i: int, cls: str, fuel: str) -> tuple[str, str]:
    """A Linfen plate and its colour for a vehicle of this kind (GA 36-2018: small new energy 晋LD·····,
    big new energy 晋L·····D on yellow-green, big fossil on yellow, small fossil on blue)."""
    if fuel in NEW_ENERGY:
        letter = "D" if fuel in ("electric", "hydrogen") else "F"
        if cls in SMALL:
            return f"晋L{letter}{7000 + i:05d}", "green"
        return f"晋L{70000 + i}{letter}", "yellow-green"
    return f"晋LA{7000 + i:04d}", ("blue" if cls in SMALL else "yellow")


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
            plate, color = _linfen_plate(i, cls, fuel)
            await registry.upsert_vehicle(conn, plate, {
                "plate_color": color, "fuel_type": fuel, "vehicle_class": cls, "emission_stage": stage,
                "registered_on": _registered_on(i, stage), "extra": {"demo": True}})
            registered += 1
        for i, (plate, fuel, stage) in enumerate(FLEET):
            await registry.upsert_vehicle(conn, plate, {
                "plate_color": "yellow-green" if fuel in NEW_ENERGY else "yellow", "fuel_type": fuel,
                "vehicle_class": "heavy_truck", "emission_stage": stage, "registered_on": _registered_on(i, stage),
                "vin": f"LFWDEMA{i:010d}", "haulier": HAULIERS[i % len(HAULIERS)], "extra": {"demo": True}})
            registered += 1
        if not await conn.fetchval("SELECT count(*) FROM alerts WHERE declared_by = 'demo' AND starts_at = $1",
                                   datetime.fromisoformat(PAST_ALERT[0])):
            await conn.execute(
                "INSERT INTO alerts (level, starts_at, ends_at, note, declared_by) VALUES ('orange', $1, $2, $3, 'demo')",
                datetime.fromisoformat(PAST_ALERT[0]), datetime.fromisoformat(PAST_ALERT[1]),
                "演示：2024年12月橙色预警(秋冬防期间)")
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


# role, what the token is bound to, and the console page it opens.
TOKEN_PAGES = (
    ("admin", {}, "/"),
    ("kiosk", {"gate_id": DEMO_GATES[0]}, f"/kiosk?gate={DEMO_GATES[0]}"),
    ("police", {}, "/police"),
    ("ecology", {}, f"/bureau?{REPORT_PERIOD}"),
    ("enterprise", {"enterprise_id": "xf-steel"}, f"/bureau?{REPORT_PERIOD}"),
)


async def demo_tokens(app: web.Application) -> dict[str, tuple[int, str]]:
    """Fresh tokens for this run; the earlier runs' demo tokens are revoked (they were printed to a terminal)."""
    pool = app[keys.POOL]
    await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE name LIKE 'demo-%' AND revoked_at IS NULL")
    made = {}
    for role, kw, _ in TOKEN_PAGES:
        made[role] = await auth.create_token(pool, role, name=f"demo-{role}", **kw)
    return made


async def load_history(app: web.Application, admin_token_id: int) -> int:
    """Passages of the 2024-25 campaign at every demo gate, with cargo and tonnes, decided by the ordinary judge
    as of their moment (so the plan then in force, its campaign rules and the December alert apply). Once."""
    pool = app[keys.POOL]
    if await pool.fetchval("SELECT count(*) FROM passages WHERE client_ref LIKE 'demo-history-%'"):
        return 0
    from gate_service.passages.judge import PassageInput

    judge = app[keys.JUDGE]
    rng = random.Random(20241001)
    clean = [f for f in FLEET if f[1] in ("electric", "hydrogen")]
    fossil = [f for f in FLEET if f[1] not in ("electric", "hydrogen")]
    days = (CAMPAIGN[1] - CAMPAIGN[0]).days + 1
    items = []
    for ident, _, industry, *_rest in ENTERPRISES:
        share = CLEAN_SHARE.get(ident, 0.5)
        for n in range(30):
            day = CAMPAIGN[0] + timedelta(days=(n * days) // 30 + rng.randrange(days // 30))
            at = datetime(day.year, day.month, day.day, 6 + rng.randrange(14), rng.randrange(60), tzinfo=SHANGHAI)
            plate = rng.choice(clean if rng.random() < share else fossil)[0]
            items.append(PassageInput(
                gate_id=f"{ident}-1", plate=plate, direction="in", at=at, source="manual",
                cargo=rng.choice(CARGO.get(industry, ("货物",))), tonnes=round(25 + rng.random() * 15, 1),
                client_ref=f"demo-history-{ident}-{n}"))
        # A China IV diesel truck during the December alert: the alert's measure for key industries shows.
        items.append(PassageInput(
            gate_id=f"{ident}-1", plate=FLEET[-5][0], direction="in", source="manual", cargo=CARGO.get(industry, ("货物",))[0],
            at=datetime(2024, 12, 11, 10, 0, tzinfo=SHANGHAI), tonnes=31.0, client_ref=f"demo-history-{ident}-alert"))
    for ident, _ in CHECKPOINTS:
        for n in range(10):
            day = CAMPAIGN[0] + timedelta(days=n * 18)
            items.append(PassageInput(
                gate_id=ident, plate=rng.choice(FLEET)[0], direction="in",
                at=datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI), source="manual",
                client_ref=f"demo-history-{ident}-{n}"))
    # Each gate's chain in time order.
    for item in sorted(items, key=lambda x: x.at):
        await judge.record(item, token_id=admin_token_id, actor="demo")
    return len(items)


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
    history = await load_history(app, tokens["admin"][0])
    settings = app[keys.SETTINGS]
    base = f"http://{settings.host}:{settings.port}"
    pages = {role: page for role, _, page in TOKEN_PAGES}
    lines = [
        "",
        "=== cleangate 演示模式 / demo mode ===",
        f"登记: {summary['enterprises']} 家企业, {summary['gates']} 个门岗, {summary['vehicles']} 辆车, "
        f"{summary['blacklisted']} 条黑名单; 橙色预警进行中",
        f"历史: 2024-25 秋冬防期间(2024-10-01 至 2025-03-31)的通行记录{f' {history} 条' if history else '(已载入)'}，"
        "含货物与吨数、2024年12月橙色预警 / campaign history with tonnes",
        f"模拟门岗终端: {', '.join(DEMO_GATES)}，图片: {folder or '合成车牌 (synthetic plates)'}",
        f"健康检查: {base}/healthz",
        "令牌与控制台 tokens and the console each opens (Authorization: Bearer ...; 旧的演示令牌已撤销 / earlier "
        "demo tokens revoked):",
        *[f"  {role:<10} {secret}  {base}{pages[role]}" for role, (_, secret) in tokens.items()],
        "按 Ctrl-C 停止 / press Ctrl-C to stop",
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
