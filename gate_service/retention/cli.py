"""`gate-service retention plan|run` (API.md "Commands")."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gate_service.cli import _with_db, day_arg, extension
from gate_service.config import Settings


async def plan_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print what retention would delete on --as-of (default today), deleting nothing."""
    from gate_service.jobs import local_today
    from gate_service.retention.apply import make_plan
    from gate_service.retention.plan import as_json, describe

    as_of = args.as_of or local_today()

    async def work(db: Any) -> int:
        from gate_service.link.clip_retention import planned_clips

        result = await make_plan(db.pool, as_of, settings)
        # 联网: at a platform, the copies of clips sites uploaded go by the same video limit.
        clips = await planned_clips(db.pool, result.video_cutoff)
        if args.json:
            print(json.dumps({**as_json(result), "uploaded_clips": clips}, ensure_ascii=False, indent=2))
        else:
            print("\n".join(describe(result, verbose=args.verbose)))
            print(f"uploaded clips of sites to delete: {clips['clips_to_delete']} ({clips['clip_bytes']} bytes); "
                  f"kept under a hold: {clips['clips_held_kept']}")
        return 0

    return await _with_db(settings, work)


async def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Apply today's plan now, as the daily job does (and under its lock)."""
    from gate_service.jobs import JobContext, run_job
    from gate_service.web import dumps

    async def work(db: Any) -> int:
        outcome = await run_job("retention", JobContext(db.pool, settings))
        if not outcome.ran:
            print("another replica is running retention right now; nothing done", file=sys.stderr)
            return 1
        if not outcome.ok:
            print(f"error: {outcome.error}", file=sys.stderr)
            return 1
        print(dumps(outcome.result))
        return 0

    return await _with_db(settings, work)


@extension
def register(sub: Any, common: argparse.ArgumentParser) -> None:
    retention = sub.add_parser("retention", help="what retention deletes (video >= 6 months, ledger >= 24 months)")
    retention_sub = retention.add_subparsers(dest="retention_cmd", required=True)
    plan = retention_sub.add_parser("plan", parents=[common], help="list what would be deleted on a day, "
                                                                   "without deleting")
    plan.add_argument("--as-of", type=day_arg, help="the day (YYYY-MM-DD, Asia/Shanghai); default today")
    plan.add_argument("--json", action="store_true", help="machine-readable, every segment listed")
    plan.add_argument("--verbose", "-v", action="store_true", help="list every segment, not per gate and day")
    plan.set_defaults(func=plan_command)
    run = retention_sub.add_parser("run", parents=[common], help="apply today's plan now (as the daily job)")
    run.set_defaults(func=run_command)
