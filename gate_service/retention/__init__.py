"""Retention (三(一)3): video at least 6 months, the ledger at least 24 months, legal holds kept."""

from gate_service.retention.plan import (
    MIN_LEDGER_MONTHS,
    MIN_VIDEO_DAYS,
    Partition,
    RetentionPlan,
    Segment,
    describe,
    limits,
    plan,
)

__all__ = ["MIN_LEDGER_MONTHS", "MIN_VIDEO_DAYS", "Partition", "RetentionPlan", "Segment", "describe", "limits",
           "plan"]
