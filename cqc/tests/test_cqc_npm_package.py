"""The npm package `@opensqt/cqc` (cqc/typescript) is publishable: its manifest names entry points that
exist, `npm pack` ships the compiled generated code and clients (JS + .d.ts) and nothing else, and a
consumer that installs the tarball imports every entry point and type-checks the README example.

Uses the compiled tree from `make ts-build` (`npm pack --ignore-scripts`, so no rebuild here); `npm
publish` runs the `prepack` build itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "cqc" / "typescript"
MODULES = ROOT / "node_modules"


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PKG / "package.json").read_text())
    return data


def _require_build() -> None:
    missing = None
    if shutil.which("npm") is None or shutil.which("node") is None:
        missing = "node/npm are not installed"
    elif not (PKG / "dist" / "src" / "clients.js").exists():
        missing = "the cqc TypeScript package is not built (cqc/typescript/dist)"
    elif not (MODULES / "@connectrpc" / "connect").exists():
        missing = "the root node_modules lack @connectrpc/connect (npm ci)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(f"{missing}; run `make node ts-build`")


def _npm_pack(*args: str) -> Any:
    result = subprocess.run(
        ["npm", "pack", "--json", "--ignore-scripts", *args],
        cwd=PKG,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(result.stdout)


def test_manifest_is_publishable() -> None:
    m = _manifest()
    assert "private" not in m
    assert m["name"] == "@opensqt/cqc"
    assert m["description"] and m["license"]
    assert m["publishConfig"] == {"access": "public"}  # a scoped package is private by default
    # One version for the contracts in every language (the release policy in cqc/README.md).
    pyproject = tomllib.loads((ROOT / "cqc" / "pyproject.toml").read_text())
    assert m["version"] == pyproject["project"]["version"]
    assert m["scripts"]["prepack"] == "npm run build"
    assert m["main"] == m["exports"]["."]["default"] == "./dist/src/clients.js"
    assert m["types"] == m["exports"]["."]["types"] == "./dist/src/clients.d.ts"
    # Runtime dependencies are the versions the repository builds and tests with (root package.json).
    root = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert set(m["dependencies"]) == {"@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node"}
    for name, spec in m["dependencies"].items():
        assert spec in {f"^{root[name]}", f"~{root[name]}"}, (name, spec, root[name])


def test_tarball_holds_compiled_code_and_nothing_else() -> None:
    _require_build()
    (packed,) = _npm_pack("--dry-run")
    files = {f["path"] for f in packed["files"]}
    generated = sorted(
        p.relative_to(PKG / "src").with_suffix("") for p in (PKG / "src" / "gen").rglob("*_pb.ts")
    )
    assert generated, "no generated TypeScript under cqc/typescript/src/gen"
    for rel in [*generated, Path("clients"), Path("node")]:
        assert f"dist/src/{rel.as_posix()}.js" in files, rel
        assert f"dist/src/{rel.as_posix()}.d.ts" in files, rel
    assert {"package.json", "README.md"} <= files
    leaked = [
        f
        for f in files
        if f.startswith(("src/", "test/", "types/", "dist/test/"))
        or f.endswith(".test.js")
        or f == "tsconfig.json"
        or (f.endswith(".ts") and not f.endswith(".d.ts"))
    ]
    assert leaked == []
    # Every entry point of the manifest is in the tarball (pattern exports checked on one module).
    for target in (_manifest()["main"], _manifest()["types"]):
        assert target.removeprefix("./") in files


def _readme_example() -> str:
    (block,) = re.findall(r"```ts\n(.*?)```", (PKG / "README.md").read_text(), flags=re.DOTALL)
    return str(block)


def test_installed_tarball_imports_and_type_checks(tmp_path: Path) -> None:
    _require_build()
    (packed,) = _npm_pack("--pack-destination", str(tmp_path))
    app = tmp_path / "app"
    target = app / "node_modules" / "@opensqt" / "cqc"
    target.mkdir(parents=True)
    with tarfile.open(tmp_path / packed["filename"]) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    shutil.copytree(tmp_path / "unpacked" / "package", target, dirs_exist_ok=True)
    # The package's dependencies come from the repository's node_modules (no registry access).
    for scope in ("@bufbuild", "@connectrpc", "@types"):
        (app / "node_modules" / scope).mkdir(exist_ok=True)
        for dep in (MODULES / scope).iterdir():
            (app / "node_modules" / scope / dep.name).symlink_to(dep)
    (app / "node_modules" / "undici-types").symlink_to(MODULES / "undici-types")
    (app / "package.json").write_text(json.dumps({"name": "consumer", "private": True, "type": "module"}))

    probe = app / "probe.mjs"
    probe.write_text(
        textwrap.dedent(
            """
            import * as cqc from "@opensqt/cqc";
            import { createCqcGrpcTransport } from "@opensqt/cqc/node";
            import { PriceSchema } from "@opensqt/cqc/gen/cqc/markets/v1/price_pb.js";
            const transport = createCqcGrpcTransport({ baseUrl: "http://127.0.0.1:1" });
            const gw = cqc.createVenueGatewayClient(transport);
            const services = Object.keys(cqc.services).sort();
            const found = { services, price: PriceSchema.typeName, getBalances: typeof gw.getBalances };
            console.log(JSON.stringify(found));
            """
        )
    )
    run = subprocess.run(
        ["node", str(probe)], cwd=app, capture_output=True, text=True, check=False, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "services": ["AssetRegistry", "MarketData", "Portfolio", "RiskEngine", "VenueGateway"],
        "price": "cqc.markets.v1.Price",
        "getBalances": "function",
    }

    # The README example type-checks against the installed package's declarations.
    (app / "example.ts").write_text(_readme_example())
    tsconfig = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            "strict": True,
            "noEmit": True,
            "types": ["node"],
            "skipLibCheck": True,
        },
        "files": ["example.ts"],
    }
    (app / "tsconfig.json").write_text(json.dumps(tsconfig))
    tsc = subprocess.run(
        [str(MODULES / ".bin" / "tsc"), "-p", "tsconfig.json"],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr
