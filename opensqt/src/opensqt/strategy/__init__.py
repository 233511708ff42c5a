"""Trading strategies as pure functions of (price, slots, parameters): the grid (:mod:`.grid`).

Layer rule: may import ``model`` and ``config`` (and cqvx number helpers); never ``risk``, ``engine``,
``app`` or ``ui`` (enforced by ``opensqt/tests/test_layers.py``).  No I/O.
"""
