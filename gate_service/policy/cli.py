"""`gate-service policy check FILE` and `gate-service policy replay --policy FILE --from D --to D`."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from gate_service.cli import _with_db, extension
from gate_service.config import Settings
from gate_service.policy import check_policy_file, format_problems, has_errors, load_policy
from gate_service.policy.model import BlacklistEntry, Enterprise, Gate, Vehicle, period_bounds
from gate_service.policy.replay import RecordedPassage, replay


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    worst = 0
    for path in args.files:
        problems = check_policy_file(path)
        print(f"{path}: {format_problems(problems)}")
        worst = max(worst, 1 if has_errors(problems) else 0)
    return worst


def recorded(row: dict[str, Any], enterprise: dict[str, Any] | None) -> RecordedPassage:
    """A ledger row as the replay engine wants it: the vehicle facts as they were recorded."""
    vehicle = Vehicle(
        plate=row["plate"], plate_color=row["plate_color"], emission_stage=row["emission_stage"],
        fuel_type=row["fuel_type"], vehicle_class=row["vehicle_class"], registered=row["registered"],
    )
    # The ledger keeps the vehicle as it was, not the enterprise: its current record stands in.
    ent = Enterprise.from_row(enterprise) if enterprise is not None else None
    return RecordedPassage(
        vehicle=vehicle,
        gate=Gate(id=row["gate_id"], zone_id=row["zone_id"], enterprise_id=row["enterprise_id"]),
        enterprise=ent,
        blacklist_entry=BlacklistEntry(row["plate"], "other") if row["blacklisted"] else None,
        alert_level=row["alert_level"],
        moment=row["at"],
        decision=row["decision"],
        rules=tuple(row["rules"]),
        observed_plate_color=row["plate_color"],
        passage_id=str(row["id"]),
    )


async def replay_ledger(conn: Any, policy_path: str, start: date, end: date) -> Any:
    policy = load_policy(policy_path)
    enterprises = {r["id"]: dict(r) for r in await conn.fetch("SELECT * FROM enterprises")}
    lo, hi = period_bounds(start, end)
    rows = await conn.fetch(
        """SELECT id, at, gate_id, zone_id, enterprise_id, plate, plate_color, emission_stage, fuel_type,
                  vehicle_class, registered, blacklisted, alert_level, decision, rules
           FROM passages WHERE at >= $1 AND at < $2 AND source <> 'override' ORDER BY at""",
        lo, hi,
    )
    return replay((recorded(dict(r), enterprises.get(r["enterprise_id"])) for r in rows), policy)


async def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Any) -> int:
        async with db.pool.acquire() as conn:
            report = await replay_ledger(conn, args.policy, args.start, args.end)
        if args.json:
            print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        else:
            print("\n".join(report.lines()))
        return 0

    return await _with_db(settings, work)


@extension
def register(sub: Any, common: argparse.ArgumentParser) -> None:
    policy = sub.add_parser("policy", help="check plan files; re-judge the ledger under another plan")
    psub = policy.add_subparsers(dest="policy_cmd", required=True)
    check = psub.add_parser("check", help="validate policy files")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=_cmd_check)
    rep = psub.add_parser("replay", parents=[common], help="what-if: how many recorded decisions would change")
    rep.add_argument("--policy", required=True, help="the policy file to judge by")
    rep.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    rep.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=_cmd_replay)
