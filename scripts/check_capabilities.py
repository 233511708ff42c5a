"""Fail when the committed capability matrix is not what the last full test run generated.

The conformance plugin (``cqvx.testing.conformance_plugin``) writes ``build/capabilities.md`` during
``pytest``; running tests never touches the committed ``docs/capabilities.md``.  ``make test`` runs this
after the full pytest run (a partial run never reaches it): exit status 1 when the two differ or when
no matrix was generated, with the fix (``make capabilities``: rerun the conformance suites and copy).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "build" / "capabilities.md"
COMMITTED = ROOT / "docs" / "capabilities.md"


def main() -> int:
    if not GENERATED.exists():
        print(f"{GENERATED.relative_to(ROOT)} is missing: run the tests first (make test)", file=sys.stderr)
        return 1
    generated = GENERATED.read_text(encoding="utf-8")
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if generated == committed:
        return 0
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True),
        generated.splitlines(keepends=True),
        fromfile="docs/capabilities.md (committed)",
        tofile="build/capabilities.md (this run)",
    )
    sys.stderr.writelines(diff)
    print(
        "\nThe committed capability matrix differs from this test run's. Refresh it with "
        "`make capabilities` and commit docs/capabilities.md.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
