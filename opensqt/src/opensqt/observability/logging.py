"""structlog setup: JSON lines under CI / without a TTY, readable console output otherwise."""

from __future__ import annotations

import io
import logging
import os
import sys
from typing import TextIO, cast

import structlog

__all__ = ["configure_logging"]


class _CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is at write time: a test runner's replaced (and later closed) stream is
    never captured for good, and the live view's stderr proxy prints log lines above the display."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO") -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    plain = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if plain else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
