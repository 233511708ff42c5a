"""Run every benchmark script in benchmarks/ (bench_*.py), one after another, and show their output.

Each script compares against its peer inside ONE process so the ratio is fair on a noisy machine;
this runner only sequences them (a script's own process is never shared with another benchmark).
Pass names to run a subset: ``python benchmarks/run_all.py book signing``.  A full run (no names)
rewrites the README's benchmark table from the scripts' ``BENCH-ROW`` lines (see ``Row``); a subset
replaces only the rows of the benchmarks it ran and says so under the table's note.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"

# A script reports its headline figures as lines "BENCH-ROW {json of Row}" (hidden from the output);
# a full run writes them as the table between these README markers.
PREFIX = "BENCH-ROW "
BEGIN = "<!-- bench-table:begin (written by `make bench`: benchmarks/run_all.py) -->"
END = "<!-- bench-table:end -->"


@dataclass(frozen=True, slots=True)
class Row:
    bench: str
    row: str
    ours: float
    unit: str
    peer: float | None = None
    peer_name: str = ""
    target: str = ""
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """Above 1 = ours better (faster rate, or lower latency)."""
        if self.peer is None or not self.ours or not self.peer:
            return None
        return self.peer / self.ours if self.lower_is_better else self.ours / self.peer


def parse(line: str) -> Row | None:
    if not line.startswith(PREFIX):
        return None
    return Row(**json.loads(line[len(PREFIX) :]))


def _fmt(value: float, unit: str) -> str:
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}"


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | row | ours | peer | ours vs peer | target |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = f"{_fmt(r.peer, r.unit)} ({r.peer_name})" if r.peer is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        ours = _fmt(r.ours, r.unit)
        lines.append(f"| {r.bench} | {r.row} | {ours} | {peer} | {ratio} | {r.target or '-'} |")
    return "\n".join(lines)


PARTIAL = "Partial run"


def _without(line: str, benches: set[str]) -> str:
    """``line`` as it stands once ``benches`` ran again: a "Partial run" line names only the benchmarks
    whose rows it still wrote ("" when none is left); any other line unchanged."""
    if not line.startswith(PARTIAL):
        return line
    named = line.partition("the rows of ")[2].partition(" are from")[0]
    left = [name.strip() for name in named.split(",") if name.strip() and name.strip() not in benches]
    if not left:
        return ""
    head, _, rest = line.partition("the rows of ")
    return f"{head}the rows of {', '.join(left)} are from{rest.partition(' are from')[2]}"


def write_table(readme: Path, rows: list[Row], note: str, *, partial: bool = False) -> bool:
    """Replace the table between the markers; False when the README has no markers.

    ``partial`` (a run of named scripts): only the rows of the benchmarks that reported rows are
    replaced, every other row and the full run's note are kept, and ``note`` becomes a "Partial run"
    line under it (an earlier partial run's line stays while none of its benchmarks ran again)."""
    text = readme.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    if partial:
        old = text[start + len(BEGIN) : end].strip("\n").splitlines()
        benches = {r.bench for r in rows}
        # An earlier partial run's line keeps naming the benchmarks whose rows it still wrote.
        notes = [
            kept_line
            for line in old
            if line and not line.startswith("|")
            for kept_line in [_without(line, benches)]
            if kept_line
        ]
        kept = [line for line in old if line.startswith("| ") and line.split(" | ")[0][2:] not in benches]
        kept = [line for line in kept if not line.startswith("| benchmark |")]
        new = table(rows).splitlines()
        lines = sorted(kept + new[2:], key=lambda line: line.split(" | ")[0])  # stable: bench order
        body = "\n".join([*notes, f"{PARTIAL}: {note}", "", *new[:2], *lines])
    else:
        body = f"{note}\n\n{table(rows)}"
    readme.write_text(text[:start] + f"{BEGIN}\n{body}\n{END}" + text[end + len(END) :])
    return True


def main(argv: list[str]) -> int:
    console = Console()
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(name in s.stem for name in argv)]
    failed: list[str] = []
    rows: list[Row] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarks", total=len(scripts))
        for script in scripts:
            progress.update(task, description=script.stem)
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=900
            )
            elapsed = time.perf_counter() - started
            progress.console.rule(f"{script.stem}  ({elapsed:.1f} s)")
            shown: list[str] = []
            for line in proc.stdout.splitlines():
                row = parse(line)
                if row is None:
                    shown.append(line)
                else:
                    rows.append(row)
            progress.console.print(
                "\n".join(shown).rstrip() or "(no output)", markup=False, highlight=False, soft_wrap=True
            )
            if proc.returncode != 0:
                failed.append(script.stem)
                progress.console.print(proc.stderr[-4000:], markup=False, style="red")
            progress.advance(task)
    if rows:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        when += f"{os.cpu_count()} CPUs, load average {load:.1f}"
        if argv:
            names = ", ".join(sorted({r.bench for r in rows}))
            note = f"the rows of {names} are from `benchmarks/run_all.py {' '.join(argv)}`, {when}."
        else:
            note = (
                f"Last `make bench`: {when}.  Ratios are measured inside one process, "
                "interleaved; above 1 = ours better.  Details and history: docs/performance.md."
            )
        if failed:
            note += f"  Failed in that run (no rows): {', '.join(failed)}."
        if write_table(README, rows, note, partial=bool(argv)):
            console.print(f"README benchmark table: {len(rows)} rows written")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
