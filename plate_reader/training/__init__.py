"""Training of the project's own plate models (``python -m plate_reader.training build-and-train``).

Needs the ``[train]`` extra (torch). Nothing under plate_reader outside this package imports it.
"""
