"""Passages: one vehicle at one gate, judged by the policy in force and written to the ledger."""
