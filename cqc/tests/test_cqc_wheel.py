"""The documented import patterns work from an installed wheel of cqc, not only from the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import google.protobuf
import grpc

ROOT = Path(__file__).resolve().parents[2]

_PROBE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import cqc
    from cqc.venues.v1 import order_pb2
    from cqc.services.v1 import PlaceOrderRequest, venue_gateway_pb2, venue_gateway_pb2_grpc
    from cqc.venues.v1 import Order

    venv = Path(sys.argv[1]).resolve()
    package = Path(cqc.__file__).resolve().parent
    assert venv in package.parents, f"cqc imported from {package}, not from the installed wheel"
    assert (package / "py.typed").is_file() and (package / "venues/v1/order_pb2.pyi").is_file()
    order = order_pb2.Order(client_order_id="c-1", price="64250.12", side=order_pb2.ORDER_SIDE_BUY)
    req = venue_gateway_pb2.PlaceOrderRequest(venue="sim", order=order)
    assert venue_gateway_pb2.PlaceOrderRequest.FromString(req.SerializeToString()) == req
    assert hasattr(venue_gateway_pb2_grpc, "VenueGatewayStub")
    assert Order is order_pb2.Order and PlaceOrderRequest is venue_gateway_pb2.PlaceOrderRequest
    assert hasattr(venue_gateway_pb2_grpc, "add_VenueGatewayServicer_to_server")
    print("wheel-ok", package)
    """
)


def _uv() -> str:
    for candidate in (
        os.environ.get("UV"),
        shutil.which("uv"),
        ROOT / ".tools" / "bin" / "uv",
        Path(sys.executable).parent / "uv",
    ):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise AssertionError("uv not found (make bootstrap installs it into .tools/)")


def _site_packages_of(module_file: str) -> Path:
    path = Path(module_file).resolve()
    while path.name != "site-packages":
        path = path.parent
    return path


def test_import_patterns_from_installed_wheel(tmp_path: Path) -> None:
    uv = _uv()
    dist = tmp_path / "dist"
    subprocess.run(
        [uv, "build", "--package", "cqc", "--wheel", "--out-dir", str(dist), "--quiet"],
        cwd=ROOT,
        check=True,
        timeout=240,
    )
    (wheel,) = dist.glob("cqc-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(wheel)],
        check=True,
        timeout=120,
    )
    # cqc's runtime dependencies (protobuf, grpcio) come from the shared environment through a .pth
    # line appended after the fresh venv's own site-packages, so the wheel's copy of cqc wins and
    # nothing is downloaded. A plain path line does not run the shared venv's editable-install hooks.
    (site,) = (venv / "lib").glob("python3*/site-packages")
    shared = {_site_packages_of(google.protobuf.__file__), _site_packages_of(grpc.__file__)}
    (site / "zz_shared_deps.pth").write_text("".join(f"{p}\n" for p in sorted(shared)))

    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    result = subprocess.run(
        [str(python), "-I", str(probe), str(venv)],
        check=False,
        cwd=tmp_path,  # outside the source tree
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wheel-ok" in result.stdout
