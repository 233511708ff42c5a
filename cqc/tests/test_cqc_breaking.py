"""The breaking-change gate bites: `buf breaking` against the committed baseline image fails when a
field is renumbered, and passes for an unchanged copy of the protos."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
BASELINE = ROOT / "cqc" / "baseline" / "image.binpb"


def _breaking(proto_dir: Path) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "node_modules/.bin/buf missing: run `npm ci` (make node)"
    return subprocess.run(
        [str(BUF), "breaking", str(proto_dir), "--against", str(BASELINE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _scratch_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "proto"
    shutil.copytree(ROOT / "cqc" / "proto", copy)
    return copy


def test_unchanged_copy_passes(tmp_path: Path) -> None:
    result = _breaking(_scratch_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_renumbered_field_fails(tmp_path: Path) -> None:
    copy = _scratch_copy(tmp_path)
    order = copy / "cqc" / "venues" / "v1" / "order.proto"
    text = order.read_text()
    assert text.count("string client_order_id = 2;") == 1
    # 99: a number no Order field uses (a used one fails to compile instead of failing the gate).
    order.write_text(text.replace("string client_order_id = 2;", "string client_order_id = 99;"))

    result = _breaking(copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "client_order_id" in output
    assert "cqc/venues/v1/order.proto" in output
