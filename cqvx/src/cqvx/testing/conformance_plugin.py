"""pytest plugin: record conformance results per venue and capability, write the capability matrix.

Register it once in the root ``conftest.py``::

    pytest_plugins = ["cqvx.testing.conformance_plugin"]

(or ad hoc: ``pytest -p cqvx.testing.conformance_plugin``).  At the end of a session that ran any
:class:`~cqvx.testing.conformance.ConformanceSuite` test it writes ``build/capabilities.md`` under the
rootdir (``--capability-matrix PATH`` to choose another file, ``--capability-matrix none`` to skip).
Running the tests never writes a tracked file: ``make test`` compares the generated matrix with the
committed ``docs/capabilities.md`` after the full run (``scripts/check_capabilities.py``) and
``make capabilities`` refreshes the committed copy.  A cell is marked passed only if every phase
(setup, call, teardown) of every test for that venue and capability passed; a test marked ``xfail``
(a known failure) counts as failed, with its reason; cells the session did not run keep their
previous value.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from cqvx.testing.conformance import ConformanceSuite, capability_of, write_capability_matrix

# Where a run writes the matrix (gitignored); docs/capabilities.md is the committed copy, compared by
# scripts/check_capabilities.py.
DEFAULT_MATRIX = Path("build") / "capabilities.md"

_RESULTS = pytest.StashKey[dict[str, dict[str, list[tuple[str, str]]]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cqvx", "cqvx conformance")
    group.addoption(
        "--capability-matrix",
        default=None,
        metavar="PATH",
        help="where the conformance run writes the venue capability matrix "
        "(default: build/capabilities.md under the rootdir; 'none' to disable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}


def _venue_and_capability(item: pytest.Item) -> tuple[str, str] | None:
    cls = getattr(item, "cls", None)
    if cls is None or not issubclass(cls, ConformanceSuite):
        return None
    cap = capability_of(getattr(item, "function", None))
    if cap is None:
        return None
    return (cls.venue or cls.__name__), cap


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    key = _venue_and_capability(item)
    if key is not None and isinstance(report, pytest.TestReport):
        venue, cap = key
        reason = ""
        xfail = getattr(report, "wasxfail", None)
        if xfail is not None and report.skipped:
            status = "failed"  # a known failure is not a pass, and not "unsupported" either
            reason = f"known failure: {str(xfail).removeprefix('reason: ')}"
        elif report.skipped:
            status = "skipped"
            longrepr = report.longrepr
            # A skip's longrepr is (file, line, "Skipped: reason").
            if isinstance(longrepr, tuple) and len(longrepr) == 3:
                reason = str(longrepr[2]).removeprefix("Skipped: ")
        elif report.failed:
            status = "failed"
            reason = f"{report.when} failed ({item.name})"
        elif report.when == "call":
            status = "passed"
            harness = getattr(item, "funcargs", {}).get("harness")
            if cap == "rate_limited" and harness is not None:
                # Which of the two accepted behaviours this venue has (documented in the matrix).
                retries = bool(getattr(harness, "rate_limit_retries", False))
                reason = "retried transparently" if retries else "raised as RateLimited(retry_after)"
        else:
            return report  # a passing setup/teardown phase says nothing on its own
        results = item.config.stash[_RESULTS]
        results.setdefault(venue, {}).setdefault(cap, []).append((status, " ".join(reason.split())))
    return report


def _verdict(outcomes: list[tuple[str, str]]) -> tuple[str, str]:
    for wanted in ("failed", "skipped", "passed"):
        for status, reason in outcomes:
            if status == wanted:
                return status, reason
    return "failed", "no outcome"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    results = session.config.stash.get(_RESULTS, {})
    if not results:
        return
    option = session.config.getoption("--capability-matrix")
    if option is not None and str(option).lower() == "none":
        return
    path = Path(option) if option else session.config.rootpath / DEFAULT_MATRIX
    matrix = {venue: {cap: _verdict(out) for cap, out in caps.items()} for venue, caps in results.items()}
    write_capability_matrix(matrix, path)
