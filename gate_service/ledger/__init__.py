"""The electronic ledger: hash-chained, append-only passages, month partitions, verification."""
