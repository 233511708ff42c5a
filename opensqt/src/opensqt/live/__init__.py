"""The HTTP endpoints of a running process (``/health``, ``/status``, ``/metrics``; :mod:`.http`).

Layer rule: a leaf: imports nothing from ``opensqt``; it serves callables the app hands it
(enforced by ``opensqt/tests/test_layers.py``).
"""
