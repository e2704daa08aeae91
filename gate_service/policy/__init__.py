"""Clean-transport gate rules as data: policy files, the pure ``decide`` function, and the checker.

Typical use by the service::

    from gate_service.policy import default_policy_set, decide, Vehicle, Gate, Enterprise, BlacklistEntry
    policies = default_policy_set()
    policy = policies.policy_for(at)
    decision = decide(vehicle, gate, enterprise, blacklist_entry, alert_level, at, policy)
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

__all__ = [
    "PLANS_DIR", "BlacklistEntry", "Decision", "Enterprise", "Gate", "Policy", "PolicyError", "PolicySet",
    "Problem", "Reason", "Target", "Vehicle", "check_policy_file", "decide", "default_policy_set",
    "format_problems", "has_errors", "load_policy", "load_policy_set", "read_policy_data",
]
