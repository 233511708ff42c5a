"""Regenerate the committed Python code of the cqc contracts (messages, gRPC stubs, .pyi stubs)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "cqc" / "proto"
OUT = ROOT / "cqc" / "src"


def main() -> int:
    for domain in (OUT / "cqc").iterdir():
        if domain.is_dir() and (PROTO / "cqc" / domain.name).is_dir():
            shutil.rmtree(domain)
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--mypy_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        *files,
    ]
    rc = protoc.main(args)
    if rc != 0:
        return int(rc)
    for d in {(OUT / f).parent for f in files} | {(OUT / f).parent.parent for f in files}:
        (d / "__init__.py").touch()
        (d / "py.typed").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
