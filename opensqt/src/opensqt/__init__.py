"""OpenSQT: the grid market-making engine, the exchange connector and the CLI.

Layers, lowest first; a package may import only packages of a LOWER layer (and itself), enforced by
``opensqt/tests/test_layers.py``:

0. ``model`` (pure: slots, client order ids, quantities; imports nothing else from opensqt);
   ``observability`` (metrics, logging) and ``live`` (HTTP endpoints, the live page): leaves
1. ``config`` (the YAML schema and loader)
2. ``strategy`` (pure grid decisions)
3. ``risk`` (pure risk rules)
4. ``engine`` (the grid engine over a cqvx ``VenueClient``); ``connector`` (the gRPC exchange connector)
5. ``ui`` (terminal view, chart); ``arb`` (funding-rate arbitrage: reuses the engine's executor and DBOS
   set-up, docs/arbitrage.md)
6. ``app`` (the process composition root)
7. ``cli``
"""
