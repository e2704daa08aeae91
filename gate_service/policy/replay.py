"""What-if replay: re-judge recorded passages under another policy and count what would change.

Pure: the caller reads the ledger and maps each row into a ``RecordedPassage`` (the vehicle facts as they
were recorded, the decision recorded then); this module only decides and counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .decide import decide
from .model import BlacklistEntry, Decision, Enterprise, Gate, Policy, Vehicle


@dataclass(frozen=True)
class RecordedPassage:
    vehicle: Vehicle | None
    gate: Gate
    enterprise: Enterprise | None
    blacklist_entry: BlacklistEntry | None
    alert_level: str | None
    moment: datetime
    decision: str  # "allow" | "deny" as recorded
    rules: tuple[str, ...] = ()  # rule ids recorded with it (denials and flags)
    observed_plate_color: str | None = None
    passage_id: Any = None


@dataclass
class ReplayReport:
    policy_id: str
    total: int = 0
    changed: int = 0
    allow_to_deny: int = 0
    deny_to_allow: int = 0
    # For allow→deny: the new policy's deny rules that cause it. For deny→allow: the recorded rules that
    # no longer hold. Counted once per passage per rule.
    newly_denied_by: Counter[str] = field(default_factory=Counter)
    no_longer_denied_by: Counter[str] = field(default_factory=Counter)
    # Same decision, different reasons (e.g. a flag added or another clause cited).
    reasons_changed: int = 0
    changed_passages: list[tuple[Any, str, str]] = field(default_factory=list)  # (passage_id, old, new)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "total": self.total,
            "changed": self.changed,
            "allow_to_deny": self.allow_to_deny,
            "deny_to_allow": self.deny_to_allow,
            "newly_denied_by": dict(self.newly_denied_by.most_common()),
            "no_longer_denied_by": dict(self.no_longer_denied_by.most_common()),
            "reasons_changed": self.reasons_changed,
        }

    def lines(self) -> list[str]:
        """Plain text for the CLI."""
        out = [
            f"policy {self.policy_id}: {self.total} passages re-judged, {self.changed} decisions would change "
            f"({self.allow_to_deny} allow→deny, {self.deny_to_allow} deny→allow); "
            f"{self.reasons_changed} keep their decision with different reasons",
        ]
        out += [f"  +deny {rule}: {n}" for rule, n in self.newly_denied_by.most_common()]
        out += [f"  -deny {rule}: {n}" for rule, n in self.no_longer_denied_by.most_common()]
        return out


def replay(passages: Iterable[RecordedPassage], policy: Policy) -> ReplayReport:
    """Re-judge every passage under ``policy`` as given (its own periods apply, whatever its effective dates)."""
    report = ReplayReport(policy.id)
    for p in passages:
        report.total += 1
        new: Decision = decide(p.vehicle, p.gate, p.enterprise, p.blacklist_entry, p.alert_level, p.moment, policy,
                               observed_plate_color=p.observed_plate_color)
        if new.decision != p.decision:
            report.changed += 1
            report.changed_passages.append((p.passage_id, p.decision, new.decision))
            if new.denied:
                report.allow_to_deny += 1
                report.newly_denied_by.update({r.rule for r in new.denials})
            else:
                report.deny_to_allow += 1
                # Recorded rules are ids only; any that the new decision does not repeat stopped denying.
                report.no_longer_denied_by.update(set(p.rules) - set(new.rule_ids) or {"(none recorded)"})
        elif set(new.rule_ids) != set(p.rules):
            report.reasons_changed += 1
    return report
