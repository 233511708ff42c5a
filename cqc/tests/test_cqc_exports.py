"""`from cqc.markets.v1 import Price` works for every message, enum and enum value of every v1 package:
the names are the `*_pb2` objects themselves, nothing is missing, mypy --strict sees their real types,
and a name defined by two files of one package fails generation instead of silently shadowing."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2

import cqc
from cqc.markets.v1 import Price, Ticker, price_pb2
from cqc.services.v1 import PlaceOrderRequest, venue_gateway_pb2
from cqc.venues.v1 import ORDER_SIDE_BUY, Order, OrderSide, order_pb2

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["assets", "events", "markets", "portfolio", "services", "venues"]


def _gen_python() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_python", ROOT / "scripts" / "gen_python.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_names_are_the_pb2_objects() -> None:
    assert Price is price_pb2.Price
    assert Ticker is price_pb2.Ticker
    assert Order is order_pb2.Order
    assert OrderSide is order_pb2.OrderSide
    assert ORDER_SIDE_BUY == order_pb2.ORDER_SIDE_BUY
    assert PlaceOrderRequest is venue_gateway_pb2.PlaceOrderRequest
    order = Order(client_order_id="c-1", side=ORDER_SIDE_BUY, price="64250.5")
    req = PlaceOrderRequest(venue="sim", order=order)
    assert venue_gateway_pb2.PlaceOrderRequest.FromString(req.SerializeToString()).order == order


def _defined(module: ModuleType) -> set[str]:
    file = module.DESCRIPTOR
    names = set(file.message_types_by_name)
    for enum in file.enum_types_by_name.values():
        names.add(enum.name)
        names.update(v.name for v in enum.values)
    return names


@pytest.mark.parametrize("domain", PACKAGES)
def test_every_top_level_name_is_exported(domain: str) -> None:
    package = importlib.import_module(f"cqc.{domain}.v1")
    expected: set[str] = set()
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_pb2"):
            expected |= _defined(importlib.import_module(f"{package.__name__}.{info.name}"))
    assert expected, f"no generated modules under {package.__name__}"
    assert set(package.__all__) == expected
    assert len(package.__all__) == len(expected)  # no duplicates either
    for name in package.__all__:
        assert getattr(package, name) is not None


def test_grpc_is_not_imported_by_the_message_packages() -> None:
    probe = "import sys, cqc.services.v1, cqc.venues.v1; assert 'grpc' not in sys.modules, 'grpc imported'"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _file(name: str, package: str, messages: list[str]) -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name=name, package=package)
    for message in messages:
        fd.message_type.add(name=message)
    return fd


def test_a_name_defined_twice_in_one_package_fails_generation() -> None:
    gen = _gen_python()
    fds = [
        _file("cqc/markets/v1/a.proto", "cqc.markets.v1", ["Price", "Quote"]),
        _file("cqc/markets/v1/b.proto", "cqc.markets.v1", ["Quote"]),
    ]
    with pytest.raises(SystemExit, match=r"'Quote'.*cqc/markets/v1/a\.proto.*cqc/markets/v1/b\.proto"):
        gen.package_exports(fds)
    # The same name in two packages is fine: each package has its own namespace.
    fds[1] = _file("cqc/venues/v1/b.proto", "cqc.venues.v1", ["Quote"])
    exports = gen.package_exports(fds)
    assert exports["cqc.venues.v1"] == {"cqc.venues.v1.b_pb2": ["Quote"]}


def test_mypy_sees_the_real_types(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(
        textwrap.dedent(
            """
            from cqc.markets.v1 import Price
            from cqc.venues.v1 import ORDER_SIDE_BUY, Order, OrderSide

            last: str = Price(last="1.5").last
            side: OrderSide.ValueType = ORDER_SIDE_BUY
            order = Order(client_order_id="c-1", side=side)
            """
        )
    )
    bad = tmp_path / "bad.py"
    bad.write_text("from cqc.markets.v1 import Price, NoSuchMessage\n\nwrong: int = Price().last\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            "/dev/null",
            str(good),
            str(bad),
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(Path(cqc.__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    out = result.stdout
    assert "good.py" not in out, out
    assert 'Module "cqc.markets.v1" has no attribute "NoSuchMessage"' in out, out
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in out, out
    assert "Found 2 errors in 1 file" in out, out
