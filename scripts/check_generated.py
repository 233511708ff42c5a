"""Fail when the committed generated contract code is not what the protos generate.

Regenerates Python (scripts/gen_python.py: the `*_pb2` modules and the per-package `__init__.py`
re-exports), TypeScript (buf generate with cqc/buf.gen.yaml) and Go
(cqc/buf.gen.go.yaml; Debian's protoc-gen-go and protoc-gen-go-grpc, see `make deps-go`) into a
temporary directory and compares file by file with the committed trees. Exit status 1 lists every
file that is stale, missing or should not exist; `make generate` fixes them.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PY_OUT = Path("cqc/src")
_TS_OUT = Path("cqc/typescript/src/gen")
_GO_OUT = Path("cqc/go/cqc")  # the generated part of the Go module (go.mod and tests are hand-written)


def _files(tree: Path) -> set[str]:
    if not tree.is_dir():
        return set()
    return {
        p.relative_to(tree).as_posix()
        for p in tree.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def compare(committed: Path, fresh: Path) -> list[str]:
    """Differences between two trees, as 'status path' lines relative to the repository root."""
    have, want = _files(committed), _files(fresh)
    rel = committed.relative_to(ROOT).as_posix() if committed.is_relative_to(ROOT) else str(committed)
    problems = [f"missing   {rel}/{f}" for f in sorted(want - have)]
    problems += [f"unexpected {rel}/{f}" for f in sorted(have - want)]
    problems += [
        f"stale     {rel}/{f}"
        for f in sorted(have & want)
        if not filecmp.cmp(committed / f, fresh / f, shallow=False)
    ]
    return problems


def _buf() -> list[str]:
    exe = ROOT / "node_modules" / ".bin" / "buf"
    if not exe.exists():
        raise SystemExit("node_modules/.bin/buf missing: run `npm ci` (make node)")
    return [str(exe)]


def buf_generate(template: str, out: Path) -> None:
    """Run `buf generate` with a template of cqc/, writing below `out` instead of the repository."""
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        [*_buf(), "generate", "cqc/proto", "--template", template, "-o", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cqc-gen-") as tmp:
        tmp_path = Path(tmp)
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "gen_python.py"), "--out", str(tmp_path / "py")],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        problems = compare(ROOT / _PY_OUT / "cqc", tmp_path / "py" / "cqc")
        buf_generate("cqc/buf.gen.yaml", tmp_path / "ts")
        problems += compare(ROOT / _TS_OUT, tmp_path / "ts" / _TS_OUT)
        missing = [p for p in ("protoc-gen-go", "protoc-gen-go-grpc") if shutil.which(p) is None]
        if missing:
            raise SystemExit(f"{', '.join(missing)} not installed: run `make deps-go` (Debian packages)")
        buf_generate("cqc/buf.gen.go.yaml", tmp_path / "go")
        problems += compare(ROOT / _GO_OUT, tmp_path / "go" / _GO_OUT)
    if problems:
        print("generated contract code is out of date (run `make generate` and commit):")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print("generated contract code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
