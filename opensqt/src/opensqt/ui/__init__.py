"""What a person sees of a running engine: the terminal view (:mod:`.view`) and the exit chart
(:mod:`.chart`, matplotlib PNG).

Layer rule: above ``engine`` (it reads ``GridEngine.status()`` and its fill list), below ``app``, which
starts it.  Never imported by the engine, strategy, risk or model (``opensqt/tests/test_layers.py``).
"""
