"""Risk rules as pure functions and pure state (time passed in): startup checks (:mod:`.startup`), the
order cleaner (:mod:`.cleaner`) and the volume-anomaly monitor (:mod:`.volume`).

Layer rule: may import ``model``, ``config`` and ``strategy``; never ``engine``, ``app`` or ``ui``
(enforced by ``opensqt/tests/test_layers.py``).  No I/O.
"""
