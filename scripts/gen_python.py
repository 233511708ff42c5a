"""Regenerate the committed Python code of the cqc contracts.

Messages (`*_pb2.py`) and mypy stubs (`*_pb2.pyi`) for every proto; gRPC stubs (`*_pb2_grpc.py` and
`.pyi`) only for protos that define a service, so no empty grpc modules are committed. Output goes to
cqc/src (the `cqc` package) or to `--out DIR` (used by scripts/check_generated.py). The output depends
only on the protos and the pinned grpcio-tools / mypy-protobuf versions, so a regeneration is a no-op
when nothing changed.

Each proto package (`cqc.markets.v1`) also gets an `__init__.py` re-exporting every top-level message,
enum and enum value of its files, so `from cqc.markets.v1 import Price` works and mypy --strict sees the
names (explicit imports plus `__all__`). gRPC stubs stay in `*_pb2_grpc` so that importing messages never
imports grpc. Two files of one package defining the same name fail generation, naming both files.
"""

from __future__ import annotations

import argparse
import re
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


def descriptors(files: list[str]) -> list[descriptor_pb2.FileDescriptorProto]:
    """The parsed protos (a descriptor set, not grepping), in the order given."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        _protoc([f"--descriptor_set_out={out}", *files])
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return list(fds.file)


def files_with_services(fds: list[descriptor_pb2.FileDescriptorProto]) -> list[str]:
    """The protos that define at least one service."""
    return sorted(f.name for f in fds if f.service)


def _public_names(fd: descriptor_pb2.FileDescriptorProto) -> list[str]:
    """What a `*_pb2` module exposes at top level: messages, enums and (protobuf's C++ scoping) the
    values of top-level enums."""
    names = [m.name for m in fd.message_type]
    for enum in fd.enum_type:
        names.append(enum.name)
        names += [v.name for v in enum.value]
    return names


def _sort_key(name: str, *, fold_case: bool = True) -> tuple[int, list[str | int]]:
    # The orders ruff enforces, so the output is lint-clean as written: CONSTANTS, then Classes, then
    # the rest; digit runs compare as numbers; imports (I001) ignore case, `__all__` (RUF022) does not.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    text = name.lower() if fold_case else name
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]
    return kind, parts


def _all_key(name: str) -> tuple[int, list[str | int]]:
    return _sort_key(name, fold_case=False)


def package_exports(fds: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, dict[str, list[str]]]:
    """{package: {pb2 module: names}} for every proto package; raises on a name defined twice."""
    packages: dict[str, dict[str, list[str]]] = {}
    owner: dict[tuple[str, str], str] = {}
    for fd in sorted(fds, key=lambda f: f.name):
        module = fd.name.removesuffix(".proto").replace("/", ".") + "_pb2"
        names = _public_names(fd)
        for name in names:
            first = owner.setdefault((fd.package, name), fd.name)
            if first != fd.name:
                raise SystemExit(
                    f"name clash in package {fd.package}: {name!r} is defined by {first} and {fd.name}; "
                    "rename one so that `from {fd.package} import {name}` is unambiguous"
                )
        packages.setdefault(fd.package, {})[module] = sorted(names, key=_sort_key)
    return packages


def render_init(package: str, modules: dict[str, list[str]]) -> str:
    """The `__init__.py` of one proto package (ruff-formatted as written)."""
    lines = [
        f'"""{package}: every message, enum and enum value of the package, re-exported from its `*_pb2`',
        "modules. Generated by scripts/gen_python.py; do not edit. gRPC stubs live in `*_pb2_grpc`.",
        '"""',
        "",
    ]
    exported: list[str] = []
    for module, names in sorted(modules.items()):
        if not names:
            continue
        lines.append(f"from {module} import (")
        lines += [f"    {name}," for name in names]
        lines.append(")")
        exported += names
    lines += ["", "__all__ = ["]
    lines += [f'    "{name}",' for name in sorted(exported, key=_all_key)]
    lines.append("]")
    return "\n".join(lines) + "\n"


def generate(out: Path) -> list[Path]:
    """Generate into `out` (a src dir: the package lands in out/cqc); return the files written."""
    files = proto_files()
    fds = descriptors(files)
    exports = package_exports(fds)  # before writing anything: a name clash leaves the tree untouched
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
    services = files_with_services(fds)
    if services:
        _protoc([f"--grpc_python_out={out}", f"--mypy_grpc_out=quiet:{out}", *services])
    # Every folder on the way to a generated module is a regular package (wheel and mypy need them).
    for f in files:
        d = (out / f).parent
        while d != out:
            (d / "__init__.py").touch()
            d = d.parent
    for name, modules in exports.items():
        (out / name.replace(".", "/") / "__init__.py").write_text(render_init(name, modules))
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
