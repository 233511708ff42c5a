"""Funding-rate arbitrage: hold spot against a perpetual and collect funding; never stay half-open.

Collaborators (docs/arbitrage.md): :mod:`.config` (the ``arb`` file), :mod:`.monitor` (funding rates,
basis, staleness gates), :mod:`.sizing` (pure sizing and price bounds), :mod:`.legs` (one order exactly
once), :mod:`.workflows` (entry and exit as DBOS workflows, with compensation), :mod:`.runner` (the
decision loop and restart recovery), :mod:`.status` (``/status``, metrics, live ``arb`` messages) and
:mod:`.cli` (``opensqt arb``).

Layer: above ``engine`` (it reuses the engine's order executor and DBOS set-up), below ``app``; imports
nothing from ``app``, ``ui`` or the CLI.
"""
