"""``gate-service video audit --gate G --from … --to …``: the video self-audit from the operator's shell."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gate_service.cli import _with_db, extension
from gate_service.config import Settings
from gate_service.policy.model import SHANGHAI


def moment(text: str) -> datetime:
    """An ISO time; without an offset it is Linfen's (Asia/Shanghai) wall time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (YYYY-MM-DDTHH:MM[:SS][+08:00])") from None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


async def _cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from gate_service.video.audit import run_audit
    from gate_service.video.storage import close_store, open_store
    from plate_reader.reader import DEFAULT_ENGINE, PlateReader

    if args.to <= args.since:
        print("error: --to is not after --from / 结束时间须晚于开始时间", file=sys.stderr)
        return 2

    async def work(db: Any) -> int:
        store = open_store(settings.data_dir, settings.media_url)
        try:
            # The gates' engine (CLEANGATE_PLATE_ENGINE): the audit re-reads video as the gates read it.
            reader = PlateReader(settings.plate_engine or DEFAULT_ENGINE, threads=1,
                                 local_provinces=settings.local_provinces)
            result = await run_audit(db.pool, store, reader, args.gate, args.since, args.to,
                                     tolerance=timedelta(seconds=args.tolerance))
        finally:
            await close_store(store)
        print(f"门岗 gate {args.gate}  {args.since.isoformat()} – {args.to.isoformat()}: {result['segments']} 段录像 "
              f"segments, {result['video_seconds']:.0f} s; 台账 ledger rows {result['ledger_rows']}")
        for v in result["vehicles"]:
            when = datetime.fromisoformat(v["at"]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
            mark = f"台账 {v['passage_id']}" if v["in_ledger"] else "未入台账 NOT IN LEDGER"
            print(f"  {when}  {v['plate']:<10}  {mark}")
        print(f"发现 findings: {len(result['findings'])} 辆车在录像中但不在台账 / vehicles in the video, not in the ledger")
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            for n, v in enumerate(result["vehicles"], start=1):
                (out / f"{n:03d}-{v['plate']}.jpg").write_bytes(base64.b64decode(v["thumbnail"].split(",", 1)[1]))
            (out / "audit.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        return 1 if result["findings"] else 0

    return await _with_db(settings, work)


@extension
def register(sub: Any, common: argparse.ArgumentParser) -> None:
    video = sub.add_parser("video", help="recorded video")
    vsub = video.add_subparsers(dest="video_cmd", required=True)
    audit = vsub.add_parser("audit", parents=[common],
                            help="视频核查: read a gate's recorded video for a period and list every vehicle seen, "
                                 "and whether the ledger has it (exit 1 when some are missing)")
    audit.add_argument("--gate", required=True)
    audit.add_argument("--from", dest="since", type=moment, required=True, help="start, e.g. 2026-11-30T08:00")
    audit.add_argument("--to", type=moment, required=True, help="end (Asia/Shanghai unless an offset is given)")
    audit.add_argument("--tolerance", type=int, default=120, help="seconds between video and ledger row (120)")
    audit.add_argument("--out", help="folder for the thumbnails and audit.json")
    audit.set_defaults(func=_cmd_audit)
