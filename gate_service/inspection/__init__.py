"""The bureau's inspection workbench (issue 17; 三(六)27/28): alert-day comparison, audit packet, anomaly list.

``days`` (ordinary days, baselines), ``compare`` and ``anomalies`` are pure (no I/O, no clock); ``store`` holds the
SQL; ``packet`` draws the reproducible sample and ``packet_xlsx`` / ``packet_pdf`` write it; ``routes`` serves it.
"""
