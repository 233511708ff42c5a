"""The crash tests' zygote (cqvx.testing.zygote): forked children act like fresh processes, and a broken
zygote fails the test with its stderr instead of hanging it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from cqvx.testing.zygote import Zygote, ZygoteError


async def test_children_run_like_fresh_processes_and_die_by_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "in.json"
    data.write_text('{"b": 1}')
    async with Zygote.start(("json",), log=tmp_path / "z.log") as z:
        ok = await z.spawn(
            "json.tool", ["--sort-keys", "in.json"], out=tmp_path / "ok.out", env={"X": "1"}, cwd=tmp_path
        )
        assert await ok.wait(timeout=60) == 0, ok.text()
        assert json.loads(ok.text()) == {"b": 1}  # cwd and stdout are the child's own
        bad = await z.spawn("json.tool", ["missing.json"], out=tmp_path / "bad.out", cwd=tmp_path)
        assert await bad.wait(timeout=60) != 0
        assert "missing.json" in bad.text()  # stderr goes to the same file
        sleeper = await z.spawn(
            "timeit", ["-n1", "-r1", "import time; time.sleep(120)"], out=tmp_path / "s.out"
        )
        assert sleeper.pid not in (os.getpid(), z.proc.pid)
        with pytest.raises(TimeoutError):
            await sleeper.wait(timeout=0.2)
        assert await sleeper.kill() == -signal.SIGKILL
        with pytest.raises(ZygoteError, match="exited 0 before"):
            await (
                await z.spawn("json.tool", ["in.json"], out=tmp_path / "x.out", cwd=tmp_path)
            ).line_containing("never printed", timeout=60)


async def test_a_missing_preload_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ZygoteError, match="no_such_module_xyz"):
        async with Zygote.start(("no_such_module_xyz",), log=tmp_path / "z.log"):
            pass


async def test_a_preload_that_starts_a_thread_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "threaded_mod.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(ZygoteError, match="refusing to fork"):
        async with Zygote.start(("threaded_mod",), log=tmp_path / "z.log"):
            pass


async def test_a_dead_zygote_fails_the_next_request(tmp_path: Path) -> None:
    async with Zygote.start(("json",), log=tmp_path / "z.log") as z:
        z.proc.kill()
        await z.proc.wait()
        with pytest.raises(ZygoteError, match="zygote"):
            await z.spawn("json.tool", ["x"], out=tmp_path / "x.out")
