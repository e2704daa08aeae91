"""Plate crops the gates kept, with the plate a guard confirmed or corrected: the site's own labelled plates.

The reader's remaining errors are the province character on small, blurred plates, and no public set of real
plate crops with a usable licence exists to retrain it on. Every camera passage keeps its rectified crop, and a
guard's override names the plate that really passed, so a site accrues exactly the data a plate-specific
recogniser needs. ``gate-service crops export`` writes it out (images + ``labels.csv``) for such training.

Labels, from strongest to weakest:
- ``corrected``: a guard overrode the passage and entered another plate (recorded as a plate correction);
  the label is the guard's plate.
- ``guard_checked``: a guard overrode the passage (e.g. to let it through) keeping the plate the camera read.
- ``camera``: nobody challenged the read; the label is the tracker's consensus (may be wrong).
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from gate_service.cli import _with_db, day_arg, extension
from gate_service.config import Settings
from gate_service.policy.model import SHANGHAI, period_bounds
from sheets import neutralise

LABEL_SOURCES = ("corrected", "guard_checked", "camera")
HEADERS = ("file", "plate", "label_source", "camera_plate", "color", "confidence", "probability", "gate_id",
           "at", "passage_id", "override_reason")

# A passage is overridden at most once, within a day (gate_service.passages.overrides), and the database
# records whether the guard corrected the plate (passage_overrides, migration 0008). A late replay of a second
# override after an outage is not a guard's label.
_QUERY = """
WITH cam AS (
    SELECT id, gate_id, at, plate, plate_color, read, crop_ref
      FROM passages
     WHERE source = 'camera' AND crop_ref IS NOT NULL AND at >= $1 AND at < $2
       AND ($3::text IS NULL OR gate_id = $3)
)
SELECT cam.*, ov.plate AS guard_plate, ov.plate_corrected, ov.override_reason
  FROM cam LEFT JOIN passage_overrides ov ON ov.cited_id = cam.id AND NOT ov.late_replay
 ORDER BY cam.at, cam.id
"""


def label_of(row: Any) -> tuple[str, str]:
    """(label plate, label source) of one camera passage joined to its latest override."""
    guard = row["guard_plate"]
    if guard is None:
        return row["plate"], "camera"
    return guard, "corrected" if row["plate_corrected"] else "guard_checked"


async def export_crops(pool: asyncpg.Pool, store: Any, out: Path, since: datetime, until: datetime, *,
                       gate_id: str | None = None, sources: tuple[str, ...] = LABEL_SOURCES) -> dict[str, int]:
    """Write ``out/crops/<passage id>.jpg`` and ``out/labels.csv`` (UTF-8 with BOM, opens in Excel).

    Rows stream through a server-side cursor and straight into the CSV: a busy month of a whole city does not
    have to fit in memory. A crop whose file retention already removed (or that cannot be read) is counted as
    missing, not fatal.
    """
    (out / "crops").mkdir(parents=True, exist_ok=True)
    counts = {s: 0 for s in LABEL_SOURCES} | {"missing": 0}
    # utf-8-sig writes the BOM that makes Excel read UTF-8 (as sheets.write_csv does for downloads).
    with open(out / "labels.csv", "w", encoding="utf-8-sig", newline="") as csv_file:
        writer = csv.writer(csv_file, lineterminator="\r\n")
        writer.writerow(HEADERS)
        async with pool.acquire() as conn, conn.transaction():
            async for row in conn.cursor(_QUERY, since, until, gate_id, prefetch=500):
                plate, source = label_of(row)
                if source not in sources:
                    continue
                try:
                    data = await store.read(row["crop_ref"])
                except (FileNotFoundError, OSError):
                    counts["missing"] += 1
                    continue
                name = f"crops/{row['id']}{Path(row['crop_ref']).suffix or '.jpg'}"
                (out / name).write_bytes(data)
                read = row["read"] or {}
                line = (name, plate, source, row["plate"], row["plate_color"] or read.get("color"),
                        read.get("confidence"), read.get("probability"), row["gate_id"],
                        row["at"].astimezone(SHANGHAI).isoformat(), str(row["id"]), neutralise(row["override_reason"]))
                writer.writerow(["" if v is None else v for v in line])
                counts[source] += 1
    return counts


async def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from gate_service.video.storage import open_store

    if args.until < args.since:
        print("error: --until is before --since / 结束日期早于开始日期", file=sys.stderr)
        return 2
    # Whole days in Linfen's time, the end day included.
    since, until = period_bounds(args.since, args.until)
    sources = ("corrected",) if args.only_corrected else LABEL_SOURCES

    async def work(db: Any) -> int:
        counts = await export_crops(db.pool, open_store(settings.data_dir, settings.media_url), Path(args.out), since, until,
                                    gate_id=args.gate, sources=sources)
        total = sum(counts[s] for s in LABEL_SOURCES)
        print(f"{total} crops written to {args.out} / 已导出车牌图像 {total} 张: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0

    return await _with_db(settings, work)


@extension
def register(sub: Any, common: argparse.ArgumentParser) -> None:
    crops = sub.add_parser("crops", help="the plate crops the gates kept, labelled by guards' corrections")
    csub = crops.add_subparsers(dest="crops_cmd", required=True)
    exp = csub.add_parser("export", parents=[common], help="write crops and labels.csv for recogniser training "
                                                           "(the crops show plates: personal data, keep them so)")
    exp.add_argument("--since", type=day_arg, required=True, help="first day, YYYY-MM-DD (Asia/Shanghai)")
    exp.add_argument("--until", type=day_arg, required=True, help="last day, YYYY-MM-DD, included")
    exp.add_argument("--out", required=True, help="folder to write to (created)")
    exp.add_argument("--gate", help="only this gate")
    exp.add_argument("--only-corrected", action="store_true", help="only crops whose plate a guard corrected")
    exp.set_defaults(func=_cmd_export)
