"""Process-wide observability plumbing: Prometheus metrics (:mod:`.metrics`) and structlog setup
(:mod:`.logging`).  The terminal view and chart live in ``opensqt.ui``.

Layer rule: a leaf: imports nothing from ``opensqt`` (enforced by ``opensqt/tests/test_layers.py``), so
every layer may use it.
"""
