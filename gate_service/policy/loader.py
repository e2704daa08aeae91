"""Reading policy files (TOML) into ``Policy`` values, and choosing the one in force at a moment.

A policy file is data; this module is the only place that touches the file system. Every problem found
while reading is collected (not just the first), so ``gate-service policy check`` can list them all.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .matchers import MATCHERS, BadValue, ParseContext
from .model import (
    FUEL_TYPES,
    KNOWN_INDUSTRIES,
    LINFEN_COUNTIES,
    ZONE_KINDS,
    ZONES,
    Condition,
    Period,
    Policy,
    Rule,
    Target,
    Zone,
    zone_for,
)

PLANS_DIR = Path(__file__).with_name("plans")

# The plan numbers itself 三(一)3: part, section in brackets, item. API.md asks for ASCII brackets.
_CN_NUM = "一二三四五六七八九十"
CLAUSE_RE = re.compile(rf"^[{_CN_NUM}]+(\([{_CN_NUM}]+\)(\d+)?)?$")
_RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")

_TOP_KEYS = {
    "id", "kind", "title", "document", "timezone", "effective_from", "effective_until", "note",
    "periods", "zones", "settings", "fuels", "targets", "rules",
}
_RULE_KEYS = {"id", "clause", "document", "effect", "message", "message_en", "note", "scope", "match"}
_TARGET_KEYS = {"ratio", "industries", "counties", "from", "until", "clause", "note"}


@dataclass(frozen=True)
class Problem:
    source: str
    where: str
    message: str
    severity: str = "error"  # "error" stops the file loading; "warning" does not

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{self.source}:{where} {self.severity}: {self.message}"


class PolicyError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__("invalid policy:\n" + "\n".join(f"  {p}" for p in errors))


def _is_date(v: Any) -> bool:
    return isinstance(v, date) and not isinstance(v, datetime)


def clause_problem(clause: Any, own_document: bool) -> str | None:
    """Why a clause is unusable, or None. Rules citing another document may use its own numbering."""
    if not isinstance(clause, str) or not clause.strip():
        return "clause is missing: every rule must cite the clause it enforces, e.g. 三(一)3"
    if "（" in clause or "）" in clause:
        fixed = clause.replace("（", "(").replace("）", ")")
        return f"clause {clause!r} uses full-width brackets; API.md cites with ASCII ones: {fixed!r}"
    if not own_document and not CLAUSE_RE.match(clause):
        return (f"clause {clause!r} is not in the plan's numbering (e.g. 三(一)3, 三(三)15); "
                "a rule citing another document must name it in its own `document` field")
    return None


class _Reader:
    def __init__(self, data: Mapping[str, Any], source: str):
        self.data = data
        self.source = source
        self.problems: list[Problem] = []

    def err(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.source, where, message))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.source, where, message, "warning"))

    def unknown_keys(self, where: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
        known = set(known)
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.err(f"{where}.{key}" if where else key, f"unknown key {key!r}{hint}")

    def text(self, table: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
        v = table.get(key)
        if v is None:
            if required:
                self.err(where, f"{key} is missing")
            return ""
        if not isinstance(v, str) or not v.strip():
            self.err(f"{where}.{key}" if where else key, f"{key} must be non-empty text")
            return ""
        return v

    def day(self, table: Mapping[str, Any], key: str, where: str, required: bool) -> date | None:
        v = table.get(key)
        if v is None:
            if required:
                self.err(where, f"{key} is missing")
            return None
        if not _is_date(v):
            self.err(f"{where}.{key}" if where else key,
                     f"bad date {v!r}: write a TOML date such as 2024-10-01 (unquoted, no time)")
            return None
        return v

    # --- sections ----------------------------------------------------------------------------

    def periods(self) -> dict[str, tuple[Period, ...]]:
        raw = self.data.get("periods", {})
        out: dict[str, tuple[Period, ...]] = {}
        if not isinstance(raw, dict):
            self.err("periods", "periods must be a table of name = {from, until} or lists of them")
            return out
        for name, spans in raw.items():
            if isinstance(spans, dict):
                spans = [spans]
            if not isinstance(spans, list) or not spans:
                self.err(f"periods.{name}", "expected {from = DATE, until = DATE} or a list of them")
                continue
            got = []
            for i, span in enumerate(spans):
                where = f"periods.{name}[{i}]"
                if not isinstance(span, dict):
                    self.err(where, "expected {from = DATE, until = DATE}")
                    continue
                self.unknown_keys(where, span, {"from", "until"})
                start = self.day(span, "from", where, True)
                end = self.day(span, "until", where, True)
                if start and end:
                    if end < start:
                        self.err(where, f"period ends ({end}) before it starts ({start})")
                    else:
                        got.append(Period(name, start, end))
            out[name] = tuple(got)
        return out

    def zones(self) -> dict[str, Zone]:
        raw = self.data.get("zones")
        if raw is None:
            return {zid: Zone(zid, name, "development_zone" if zid not in ("city", "other") else zid)
                    for zid, name in ZONES.items()}
        out: dict[str, Zone] = {}
        if not isinstance(raw, dict):
            self.err("zones", "zones must be a table: [zones.ID] name = ..., kind = ...")
            return out
        for zid, z in raw.items():
            where = f"zones.{zid}"
            if not isinstance(z, dict):
                self.err(where, "expected a table with name and kind")
                continue
            self.unknown_keys(where, z, {"name", "kind"})
            if zid not in ZONES:
                close = difflib.get_close_matches(zid, ZONES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.err(where, f"unknown zone {zid!r}{hint}: gates can only be in {', '.join(ZONES)}")
            kind = z.get("kind")
            if kind not in ZONE_KINDS:
                self.err(where, f"zone kind must be one of {', '.join(ZONE_KINDS)}, not {kind!r}")
            out[zid] = Zone(zid, self.text(z, "name", where), str(kind))
        return out

    def fuels(self) -> tuple[frozenset[str], frozenset[str]]:
        raw = self.data.get("fuels", {})
        defaults = {"new_energy": ["electric", "hydrogen", "phev"], "clean": ["electric", "hydrogen"]}
        if not isinstance(raw, dict):
            self.err("fuels", "fuels must be a table with new_energy and clean lists")
            raw = {}
        self.unknown_keys("fuels", raw, defaults)
        out = []
        for key, default in defaults.items():
            v = raw.get(key, default)
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                self.err(f"fuels.{key}", "expected a list of fuel types")
                out.append(frozenset(default))
                continue
            for x in v:
                if x not in FUEL_TYPES:
                    self.err(f"fuels.{key}", f"unknown fuel {x!r} (known: {', '.join(FUEL_TYPES)})")
            out.append(frozenset(x for x in v if x in FUEL_TYPES))
        return out[0], out[1]

    def targets(self, document: str) -> tuple[Target, ...]:
        raw = self.data.get("targets", [])
        if not isinstance(raw, list):
            self.err("targets", "targets must be an array of tables: [[targets]]")
            return ()
        out = []
        for i, t in enumerate(raw):
            where = f"targets[{i}]"
            if not isinstance(t, dict):
                self.err(where, "expected a table")
                continue
            self.unknown_keys(where, t, _TARGET_KEYS)
            ratio = t.get("ratio")
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
                self.err(where, f"ratio must be a share between 0 and 1 (e.g. 0.60), not {ratio!r}")
                ratio = None
            industries = t.get("industries")
            if not isinstance(industries, list) or not industries or not all(isinstance(x, str) for x in industries):
                self.err(where, "industries must be a non-empty list")
                industries = []
            for x in industries:
                if x not in KNOWN_INDUSTRIES:
                    self.warn(where, f"industry {x!r} is not one the registry knows yet")
            counties = t.get("counties")
            if counties is not None:
                if not isinstance(counties, list) or not all(isinstance(x, str) for x in counties):
                    self.err(where, "counties must be a list of Chinese county names")
                    counties = []
                for x in counties:
                    if x not in LINFEN_COUNTIES:
                        self.warn(where, f"county {x!r} is not a county of Linfen")
            start = self.day(t, "from", where, False)
            end = self.day(t, "until", where, False)
            if start and end and end < start:
                self.err(where, f"target window ends ({end}) before it starts ({start})")
            clause = t.get("clause")
            problem = clause_problem(clause, False)
            if problem:
                self.err(where, problem)
            if ratio is not None:
                out.append(Target(float(ratio), tuple(industries), tuple(counties) if counties is not None else None,
                                  start, end, str(clause), str(t.get("note", ""))))
        return tuple(out)

    def rules(self, document: str, ctx: ParseContext) -> tuple[Rule, ...]:
        raw = self.data.get("rules", [])
        if not isinstance(raw, list):
            self.err("rules", "rules must be an array of tables: [[rules]]")
            return ()
        seen: set[str] = set()
        out = []
        for i, r in enumerate(raw):
            if not isinstance(r, dict):
                self.err(f"rules[{i}]", "expected a table")
                continue
            rid = r.get("id")
            where = f"rules[{i}]" + (f" ({rid})" if isinstance(rid, str) else "")
            self.unknown_keys(where, r, _RULE_KEYS)
            if not isinstance(rid, str) or not _RULE_ID_RE.match(rid):
                self.err(where, f"rule id {rid!r} must be lowercase letters, digits, '-', '_' or '.'")
            elif rid in seen:
                self.err(where, f"duplicate rule id {rid!r}")
            else:
                seen.add(rid)
            own_doc = r.get("document")
            if own_doc is not None and (not isinstance(own_doc, str) or not own_doc.strip()):
                self.err(where, "document must be non-empty text")
                own_doc = None
            clause = r.get("clause")
            problem = clause_problem(clause, own_doc is not None and own_doc != document)
            if problem:
                self.err(where, problem)
            effect = r.get("effect")
            if effect not in ("deny", "flag"):
                self.err(where, f"effect must be 'deny' or 'flag', not {effect!r}")
            message = self.text(r, "message", where)
            if message and not _CJK_RE.search(message):
                self.err(where, "message is for the guard's screen and must be in Chinese (English goes in message_en)")
            message_en = self.text(r, "message_en", where, required=False)
            if not message_en:
                self.warn(where, "message_en is missing")
            scope = self.conditions(r, "scope", where, ctx)
            match = self.conditions(r, "match", where, ctx)
            if effect == "deny" and not match:
                self.warn(where, "deny rule with an empty [match] refuses every vehicle in its scope")
            out.append(Rule(
                id=str(rid), clause=str(clause), document=own_doc or document, effect=effect,
                message=message, message_en=message_en, scope=scope, match=match, note=str(r.get("note", "")),
            ))
        return tuple(out)

    def conditions(self, rule: Mapping[str, Any], section: str, where: str, ctx: ParseContext) -> tuple[Condition, ...]:
        raw = rule.get(section, {})
        if not isinstance(raw, dict):
            self.err(f"{where}.{section}", f"{section} must be a table of conditions")
            return ()
        out = []
        mine = {k for k, m in MATCHERS.items() if m.section == section}
        for key, value in raw.items():
            w = f"{where}.{section}.{key}"
            m = MATCHERS.get(key)
            if m is None:
                close = difflib.get_close_matches(key, mine, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(mine))})"
                self.err(w, f"unknown {section} key {key!r}{hint}")
                continue
            if m.section != section:
                self.err(w, f"{key!r} belongs in [rules.{m.section}], not [rules.{section}]")
                continue
            ctx.warnings.clear()
            try:
                parsed = m.parse(value, ctx)
            except BadValue as e:
                self.err(w, str(e))
                continue
            for warning in ctx.warnings:
                self.warn(w, warning)
            out.append(Condition(key, parsed, m.test))
        return tuple(out)

    def read(self) -> Policy | None:
        d = self.data
        self.unknown_keys("", d, _TOP_KEYS)
        pid = self.text(d, "id", "")
        if pid and not _RULE_ID_RE.match(pid):
            self.err("id", f"policy id {pid!r} must be lowercase letters, digits, '-', '_' or '.'")
        kind = d.get("kind", "plan")
        if kind not in ("plan", "base"):
            self.err("kind", f"kind must be 'plan' or 'base', not {kind!r}")
        title = self.text(d, "title", "")
        document = self.text(d, "document", "")
        tz = d.get("timezone", "Asia/Shanghai")
        try:
            zone_for(tz)
        except (ValueError, TypeError):
            self.err("timezone", f"unknown time zone {tz!r}")
        start = self.day(d, "effective_from", "", kind == "plan")
        end = self.day(d, "effective_until", "", kind == "plan")
        if kind == "base" and (start or end):
            self.err("", "a base policy applies where no plan does: it has no effective dates")
        if start and end and end < start:
            self.err("effective_until", f"effective_until ({end}) is before effective_from ({start})")
        periods = self.periods()
        for name, spans in periods.items():
            for p in spans:
                if start and end and not (start <= p.start and p.end <= end):
                    self.warn(f"periods.{name}", f"period {p.start}–{p.end} is outside the file's effective dates")
        zones = self.zones()
        settings = d.get("settings", {})
        if not isinstance(settings, dict):
            self.err("settings", "settings must be a table")
            settings = {}
        new_energy, clean = self.fuels()
        targets = self.targets(document)
        ctx = ParseContext(frozenset(zones), frozenset(periods), dict(settings), frozenset(KNOWN_INDUSTRIES), [])
        rules = self.rules(document, ctx)
        if any(p.severity == "error" for p in self.problems):
            return None
        return Policy(
            id=pid, title=title, document=document, kind=kind, effective_from=start, effective_until=end,
            timezone=tz, periods=MappingProxyType(periods), zones=MappingProxyType(zones),
            settings=MappingProxyType(dict(settings)), new_energy_fuels=new_energy, clean_fuels=clean,
            targets=targets, rules=rules, source=self.source,
        )


def read_policy_data(data: Mapping[str, Any], source: str = "<policy>") -> tuple[Policy | None, list[Problem]]:
    """Build a Policy from already-parsed TOML; returns (policy or None when there are errors, problems)."""
    reader = _Reader(data, source)
    policy = reader.read()
    return policy, reader.problems


def read_policy_file(path: str | Path) -> tuple[Policy | None, list[Problem]]:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        return None, [Problem(str(path), "", f"cannot read file: {e.strerror or e}")]
    except tomllib.TOMLDecodeError as e:
        return None, [Problem(str(path), "", f"not valid TOML: {e}")]
    return read_policy_data(data, str(path))


def load_policy(path: str | Path) -> Policy:
    """Load one policy file; raises PolicyError listing every error found."""
    policy, problems = read_policy_file(path)
    if policy is None:
        raise PolicyError(problems)
    return policy


# --- several files in force at different dates ------------------------------------------------------

# Where no plan is in force and no base file was loaded: no rules at all, every vehicle passes.
EMPTY_BASE = Policy(
    id="none", title="无攻坚方案", document="", kind="base", effective_from=None, effective_until=None,
    timezone="Asia/Shanghai", periods=MappingProxyType({}),
    zones=MappingProxyType({z: Zone(z, n, "other") for z, n in ZONES.items()}), settings=MappingProxyType({}),
    new_energy_fuels=frozenset({"electric", "hydrogen", "phev"}), clean_fuels=frozenset({"electric", "hydrogen"}),
    targets=(), rules=(),
)


class PolicySet:
    """Policy files in force at different dates, plus one base policy for days no plan covers.

    ``policy_for(moment)`` picks the plan whose effective dates hold the local day of ``moment``; where two
    plans overlap, the one that took effect later wins (a new winter's plan supersedes the old one from its
    first day). Days no plan covers are judged by the base policy (``kind = "base"``), which holds only the
    permanent measures such as the 国3 retirement; without a base file, by an empty policy that allows all.
    """

    def __init__(self, policies: Iterable[Policy]):
        plans: list[Policy] = []
        bases: list[Policy] = []
        ids: set[str] = set()
        for p in policies:
            if p.id in ids:
                raise PolicyError([Problem(p.source, "id", f"policy id {p.id!r} is loaded twice")])
            ids.add(p.id)
            (bases if p.kind == "base" else plans).append(p)
        if len(bases) > 1:
            raise PolicyError([Problem(b.source, "kind", "more than one base policy loaded") for b in bases])
        starts: dict[date | None, Policy] = {}
        for p in plans:
            if p.effective_from in starts:
                other = starts[p.effective_from]
                raise PolicyError([Problem(p.source, "effective_from",
                                           f"takes effect on the same day as {other.id!r}; cannot tell which wins")])
            starts[p.effective_from] = p
        self.plans: tuple[Policy, ...] = tuple(sorted(plans, key=lambda p: p.effective_from or date.min))
        self.base: Policy = bases[0] if bases else EMPTY_BASE

    @property
    def policies(self) -> tuple[Policy, ...]:
        return self.plans + ((self.base,) if self.base is not EMPTY_BASE else ())

    def get(self, policy_id: str) -> Policy:
        for p in self.policies:
            if p.id == policy_id:
                return p
        raise KeyError(policy_id)

    def policy_for(self, moment: datetime) -> Policy:
        for p in reversed(self.plans):
            if p.in_force_on(p.local_day(moment)):
                return p
        return self.base

    def is_clean(self, fuel_type: str | None, moment: datetime) -> bool:
        return self.policy_for(moment).is_clean(fuel_type)

    def target_for(self, industry: str, county: str | None, period_from: date, period_to: date) -> PlanTarget | None:
        """The target for a report period. Targets carry their own dates, so every loaded plan is asked;
        where several answer, the plan that took effect last wins, and the base's standing targets come last."""
        for p in (*reversed(self.plans), self.base):
            t = p.target_for(industry, county, period_from, period_to)
            if t is not None:
                return PlanTarget(t, p.id)
        return None


class PlanTarget(float):
    """A target share that names the plan that set it (``plan``: a policy id). A float, so every figure and
    comparison made with a target is unchanged; the report shows the plan as ``target_plan``."""

    plan: str

    def __new__(cls, ratio: float, plan: str) -> PlanTarget:
        value = super().__new__(cls, ratio)
        value.plan = plan
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (PlanTarget, (float(self), self.plan))


def _policy_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.toml")))  # not recursive: examples/ stay out unless named
        else:
            files.append(p)
    return files


def load_policy_set(*paths: str | Path, include_default: bool = True) -> PolicySet:
    """The bundled plans (``gate_service/policy/plans/*.toml``) plus extra files or directories."""
    files = _policy_files(([PLANS_DIR] if include_default else []) + list(paths))
    policies, problems = [], []
    for f in files:
        policy, found = read_policy_file(f)
        if policy is None:
            problems.extend(found)
        else:
            policies.append(policy)
    if problems:
        raise PolicyError(problems)
    return PolicySet(policies)


_default: PolicySet | None = None


def default_policy_set() -> PolicySet:
    """The bundled plans, loaded once per process."""
    global _default
    if _default is None:
        _default = load_policy_set()
    return _default
