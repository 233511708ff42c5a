"""Run every benchmark script in benchmarks/ (bench_*.py), one after another, and show their output.

Each script compares against its peer inside ONE process so the ratio is fair on a noisy machine;
this runner only sequences them (a script's own process is never shared with another benchmark).
Pass names to run a subset: ``python benchmarks/run_all.py book signing``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    console = Console()
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(name in s.stem for name in argv)]
    failed: list[str] = []
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
            progress.console.print(
                proc.stdout.rstrip() or "(no output)", markup=False, highlight=False, soft_wrap=True
            )
            if proc.returncode != 0:
                failed.append(script.stem)
                progress.console.print(proc.stderr[-4000:], markup=False, style="red")
            progress.advance(task)
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
