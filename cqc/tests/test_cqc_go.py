"""The generated Go code compiles against Debian's Go protobuf and gRPC packages, and decodes the shared
Python and Node test vectors (cqc/go/vectors_test.go). Needs `make deps-go` (Debian golang-go,
golang-google-protobuf-dev, golang-google-grpc-dev); builds offline in GOPATH mode."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = "github.com/opensqt/opensqt/cqc/go"
# Where Debian's golang-*-dev packages put their sources (a GOPATH tree).
DEBIAN_GOPATH = Path("/usr/share/gocode")


def test_go_code_compiles_and_decodes_vectors(tmp_path: Path) -> None:
    go = shutil.which("go")
    assert go, "Go toolchain missing: run `make deps-go` (Debian golang-go)"
    assert (DEBIAN_GOPATH / "src/google.golang.org/grpc").is_dir(), (
        "run `make deps-go` (golang-google-grpc-dev)"
    )
    gopath = tmp_path / "gopath"
    shutil.copytree(ROOT / "cqc" / "go", gopath / "src" / MODULE)
    env = {
        **os.environ,
        "GO111MODULE": "off",  # no module downloads: everything comes from Debian's GOPATH tree
        "GOPATH": f"{gopath}{os.pathsep}{DEBIAN_GOPATH}",
        "GOFLAGS": "",
        "CQC_VECTORS": str(ROOT / "cqc" / "tests" / "vectors"),
    }
    env.setdefault("GOCACHE", str(Path.home() / ".cache" / "go-build"))
    result = subprocess.run(
        [go, "test", "-count=1", f"{MODULE}/..."],
        cwd=gopath / "src" / MODULE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=540,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"ok  \t{MODULE}\t" in output, output
