"""The HTTP endpoints of a running process (``/health``, ``/status``, ``/metrics``; :mod:`.http`) and the
live page: its protocol (:mod:`.protocol`), state (:mod:`.feed`), WebSocket hub (:mod:`.hub`), routes
(:mod:`.server`) and the standalone ``opensqt live`` (:mod:`.relay`, :mod:`.cli`); docs/live.md.

Layer rule: a leaf: imports nothing from ``opensqt`` outside ``live``; it serves callables and messages
the app hands it (enforced by ``opensqt/tests/test_layers.py``).
"""
