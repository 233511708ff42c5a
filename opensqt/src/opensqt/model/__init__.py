"""The pure model of the grid: slots and their state machine (:mod:`.slots`), client order ids
(:mod:`.client_ids`) and order quantities (:mod:`.quantities`).

No I/O, no clocks of its own (time is passed in), no asyncio.  Layer rule: imports nothing from
``opensqt`` except ``opensqt.model`` (enforced by ``opensqt/tests/test_layers.py``); everything else in
``opensqt`` may import it.
"""
