"""Kiosk frames to passages: reading off the event loop, a per-gate tracker, snapshots."""
