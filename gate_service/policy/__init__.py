"""Clean-transport gate rules as data: policy files, the pure ``decide`` function, the checker, replay.

Typical use by the service::

    from gate_service.policy import default_policy_set, decide, Vehicle, Gate, Enterprise, BlacklistEntry
    policy = default_policy_set().policy_for(at)          # the plan in force on at's local day
    decision = decide(vehicle, gate, enterprise, blacklist_entry, alert_level, at, policy)
    body = decision.to_json()                             # {"decision", "reasons": [{"rule", "clause", ...}], ...}
"""

from .check import check_policy_file, format_problems, has_errors
from .decide import decide
from .loader import (
    PLANS_DIR,
    PolicyError,
    PolicySet,
    Problem,
    default_policy_set,
    load_policy,
    load_policy_set,
    read_policy_data,
)
from .model import BlacklistEntry, Decision, Enterprise, Gate, Policy, Reason, Target, Vehicle
from .replay import RecordedPassage, ReplayReport, replay

__all__ = [
    "PLANS_DIR", "BlacklistEntry", "Decision", "Enterprise", "Gate", "Policy", "PolicyError", "PolicySet",
    "Problem", "Reason", "RecordedPassage", "ReplayReport", "Target", "Vehicle", "check_policy_file", "decide",
    "default_policy_set", "format_problems", "has_errors", "load_policy", "load_policy_set", "read_policy_data",
    "replay",
]
