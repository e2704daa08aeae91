"""`gate-service`: serve, migrate, tokens, and the operator's tools (API.md "Commands")."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from gate_service.config import Settings

Command = Callable[[argparse.Namespace, Settings], Awaitable[int] | int]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_overrides(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None),
    )


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from gate_service.app import create_app
    from gate_service.logs import setup_logging

    level = settings.log_level
    if args.demo and "CLEANGATE_LOG_LEVEL" not in os.environ:
        # A newcomer's first run: the demo's own lines (what each gate decided) should not drown in JSON logs.
        level = "WARNING"
        print("演示模式只显示警告日志 / demo mode logs warnings only (CLEANGATE_LOG_LEVEL=INFO shows everything)",
              flush=True)
    setup_logging(level)
    if getattr(args, "demo_two_tier", False):  # a platform and a site, two processes (gate_service.link.demo)
        from gate_service.link.demo import run

        return run(settings)
    if args.demo:
        settings = settings.with_overrides(demo=True)
    app = create_app(settings)
    print(f"cleangate listening on http://{settings.host}:{settings.port}  (data: {settings.data_dir})", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


def day_arg(value: str) -> date:
    """argparse type for a day given as YYYY-MM-DD (the operator commands' --as-of, --since, --until)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


async def _with_db(settings: Settings, work: Callable[[Any], Awaitable[int]], *, migrate: bool = True) -> int:
    from gate_service.db import open_database

    db = await open_database(settings.with_overrides(pool_min=1, pool_max=2), migrate=migrate)
    try:
        return await work(db)
    finally:
        await db.close()


async def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from gate_service.db import apply_migrations

    async def work(db: Any) -> int:
        async with db.pool.acquire() as conn:
            applied = await apply_migrations(conn)
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
        return 0

    return await _with_db(settings, work, migrate=False)


async def _cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from gate_service import auth

    async def work(db: Any) -> int:
        if args.token_cmd == "create":
            gates = args.gate or []
            try:
                if args.role == "site":  # 联网: an enterprise's site, or a checkpoint site bound to its gates
                    from gate_service.link.enrol import create_site_token

                    token_id, secret = await create_site_token(
                        db.pool, enterprise_id=args.enterprise, gate_ids=gates, name=args.name or "")
                else:
                    if len(gates) > 1:
                        raise ValueError("only a site token takes more than one --gate")
                    token_id, secret = await auth.create_token(
                        db.pool, args.role, gate_id=gates[0] if gates else None, enterprise_id=args.enterprise,
                        name=args.name or ""
                    )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"token id {token_id}, role {args.role}: keep it secret, it is shown only once", file=sys.stderr)
            print(secret)
            return 0
        if args.token_cmd == "revoke":
            ok = await auth.revoke_token(db.pool, args.id)
            print("revoked" if ok else f"no active token with id {args.id}")
            return 0 if ok else 1
        for row in await auth.list_tokens(db.pool):
            state = "revoked" if row["revoked_at"] else "active"
            bound = row["gate_id"] or row["enterprise_id"] or ""
            print(f"{row['id']}\t{row['role']}\t{bound}\t{row['prefix']}…\t{state}\t{row['name']}")
        return 0

    return await _with_db(settings, work)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gate-service", description="cleangate: clean-transport gate control")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="data directory (embedded PostgreSQL, video, snapshots); default ./var")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--demo", action="store_true", help="load a sample registry and run a simulated kiosk")
    serve.add_argument("--demo-two-tier", action="store_true",
                       help="the demo as a platform (--port) and a site (--port + 1), two processes")
    serve.set_defaults(func=_cmd_serve)

    migrate = sub.add_parser("migrate", parents=[common], help="apply pending database migrations")
    migrate.set_defaults(func=_cmd_migrate)

    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_cmd", required=True)
    create = token_sub.add_parser("create", parents=[common], help="create a token (printed as the last line)")
    create.add_argument("--role", required=True, choices=["admin", "kiosk", "police", "ecology", "enterprise", "site"])
    create.add_argument("--gate", action="append",
                        help="the gate a kiosk token is bound to; repeated for a checkpoint site's gates")
    create.add_argument("--enterprise", help="the enterprise an enterprise token is bound to")
    create.add_argument("--name", help="who holds it, for the audit log")
    revoke = token_sub.add_parser("revoke", parents=[common], help="revoke a token by id")
    revoke.add_argument("id", type=int)
    token_sub.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    token.set_defaults(func=_cmd_token)

    for register in _extensions:
        register(sub, common)
    return parser


# Other modules add subcommands (policy, ledger, retention) without this file knowing their internals.
_extensions: list[Callable[[Any, argparse.ArgumentParser], None]] = []


def extension(register: Callable[[Any, argparse.ArgumentParser], None]) -> Callable[[Any, argparse.ArgumentParser], None]:
    _extensions.append(register)
    return register


def main(argv: list[str] | None = None) -> int:
    _load_extensions()
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    if args.command != "serve":
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = args.func(args, settings)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


def _load_extensions() -> None:
    import importlib

    for module in ("gate_service.policy.cli", "gate_service.ledger.cli", "gate_service.retention.cli",
                   "gate_service.passages.crops", "gate_service.video.audit_cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "extension", "day_arg", "Path"]
