"""Venue adapters: one sub-package per venue (``cqvx.venues.<venue>``), plus ``sim``, the simulated venue."""
