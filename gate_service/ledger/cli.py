"""`gate-service ledger verify`: recompute every gate's hash chain; exit 0 when intact."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gate_service.cli import _with_db, extension
from gate_service.config import Settings
from gate_service.ledger.store import verify


async def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Any) -> int:
        async with db.pool.acquire() as conn:
            checked, breaks = await verify(conn, args.gate)
        if not breaks:
            print(f"ledger intact: {checked} passages checked / 台账完整,已校验 {checked} 条")
            return 0
        for b in breaks:
            print(f"BROKEN {b} / 台账链断裂", file=sys.stderr)
        print(f"{len(breaks)} broken chain(s) among {checked} passages checked")
        return 1

    return await _with_db(settings, work)


@extension
def register(sub: Any, common: argparse.ArgumentParser) -> None:
    ledger = sub.add_parser("ledger", help="the electronic ledger")
    lsub = ledger.add_subparsers(dest="ledger_cmd", required=True)
    ver = lsub.add_parser("verify", parents=[common], help="re-check the hash chains")
    ver.add_argument("--gate", help="only this gate")
    ver.set_defaults(func=_cmd_verify)
