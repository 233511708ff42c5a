"""Regenerate the committed Python code of the cqc contracts.

Messages (`*_pb2.py`) and mypy stubs (`*_pb2.pyi`) for every proto; gRPC stubs (`*_pb2_grpc.py` and
`.pyi`) only for protos that define a service, so no empty grpc modules are committed. Output goes to
cqc/src (the `cqc` package) or to `--out DIR` (used by scripts/check_generated.py). The output depends
only on the protos and the pinned grpcio-tools / mypy-protobuf versions, so a regeneration is a no-op
when nothing changed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "cqc" / "proto"
OUT = ROOT / "cqc" / "src"

# Hand-written files of the package that generation must keep.
_KEEP = {"py.typed"}


def proto_files() -> list[str]:
    """Every contract proto, relative to the module root (e.g. "cqc/venues/v1/order.proto")."""
    return sorted(p.relative_to(PROTO).as_posix() for p in PROTO.rglob("*.proto"))


def _plugin(name: str) -> str:
    """mypy-protobuf's plugins live next to this interpreter (the venv), which need not be on PATH."""
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install mypy-protobuf into this environment")
    return found


def _protoc(args: list[str]) -> None:
    include = str(Path(protoc.__file__).parent / "_proto")
    plugins = [f"--plugin={name}={_plugin(name)}" for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc")]
    rc = protoc.main(["grpc_tools.protoc", *plugins, f"-I{PROTO}", f"-I{include}", *args])
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc}) for: {' '.join(args)}")


def files_with_services(files: list[str]) -> list[str]:
    """The protos that define at least one service (read from a descriptor set, not by grepping)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        _protoc([f"--descriptor_set_out={out}", *files])
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return sorted(f.name for f in fds.file if f.service)


def generate(out: Path) -> list[Path]:
    """Generate into `out` (a src dir: the package lands in out/cqc); return the files written."""
    files = proto_files()
    package = out / "cqc"
    # Remove earlier output (stale modules of deleted protos) but keep hand-written files.
    if package.is_dir():
        for child in package.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            elif child.name not in _KEEP:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    _protoc([f"--python_out={out}", f"--mypy_out=quiet:{out}", *files])
    services = files_with_services(files)
    if services:
        _protoc([f"--grpc_python_out={out}", f"--mypy_grpc_out=quiet:{out}", *services])
    # Every folder on the way to a generated module is a regular package (wheel and mypy need them).
    for f in files:
        d = (out / f).parent
        while d != out:
            (d / "__init__.py").touch()
            d = d.parent
    (package / "py.typed").touch()
    return sorted(p for p in package.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="src directory to generate into")
    args = parser.parse_args(argv)
    written = generate(args.out.resolve())
    print(f"generated {len(written)} Python files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
