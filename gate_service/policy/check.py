"""``gate-service policy check FILE``: every problem in a policy file, in words its author can act on."""

from __future__ import annotations

from pathlib import Path

from .loader import Problem, read_policy_file


def check_policy_file(path: str | Path) -> list[Problem]:
    """All errors and warnings of one file; the file is usable when none has severity "error"."""
    _policy, problems = read_policy_file(path)
    return problems


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, errors first; "OK" when there are none (what the CLI prints)."""
    if not problems:
        return "OK"
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    return "\n".join(str(p) for p in ordered)
