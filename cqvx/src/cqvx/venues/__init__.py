"""Venue adapters: one sub-package per venue (``cqvx.venues.<venue>``), plus ``sim``, the simulated venue.

Every venue is also reachable by name through :mod:`cqvx.venues.registry` (a typed config section per
venue type, built with :func:`cqvx.venues.registry.build`); its section lives in
``cqvx.venues.<venue>.section``.
"""
