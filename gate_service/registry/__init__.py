"""The registry: enterprises, gates and vehicles — who may pass is judged from these."""
