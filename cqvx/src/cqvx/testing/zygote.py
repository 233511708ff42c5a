"""A zygote for crash tests: import the heavy modules once, then fork a fresh-looking process per start.

A crash test starts the CLI many times and kills it with SIGKILL.  ``python -m opensqt.cli`` spends
5-14 s importing (cqvx, opensqt, dbos, grpc, sqlalchemy, ...) on this machine; a fork of a process that
already imported them costs milliseconds.

Rules:

* The zygote is ``python -m cqvx.testing.zygote MODULE...``: it imports the listed modules (the caller
  names them: whatever its command imports, e.g. ``opensqt.cli``, ``opensqt.arb.runner``, ``dbos``,
  ``grpc``), then REFUSES to serve (exits 3, the reason on stderr) if an import started a thread (a fork
  copies only the forking thread: a lock held by another thread stays locked forever in the child).  It
  never starts an event loop, a thread, a gRPC channel or a database connection.
* Requests are JSON lines on the zygote's stdin, one JSON reply line each on its stdout:
  ``{"op": "spawn", "module": M, "argv": [...], "env": {...}, "cwd": D, "out": F}`` -> ``{"pid": N}``;
  ``{"op": "wait", "pid": N, "timeout": T}`` -> ``{"code": C}`` (``-SIG`` for a signal, as
  ``subprocess``; ``null`` when still running at ``T``).
* A child behaves like ``python -m M argv...`` started fresh: its own pid and session, ``os.environ``
  replaced by ``env``, cwd ``D``, stdin ``/dev/null``, stdout and stderr (line-buffered) appended to the
  file ``F``, the signal dispositions of a new interpreter (SIGINT raises KeyboardInterrupt, SIGTERM and
  SIGCHLD default), ``random`` reseeded (CPython does it at fork), no event loop (none exists in the
  zygote).  It runs ``M`` as ``__main__`` (``runpy``) and leaves through the interpreter's normal exit
  (``SystemExit`` -> threads joined, ``atexit`` handlers, buffers flushed), so exit codes are the CLI's.
* The zygote reaps its children (``wait``); at EOF on stdin (the test ended or crashed) it SIGKILLs
  every child still running and exits, so no process outlives the test.
* The test side (:class:`Zygote`) puts a timeout on every request: a zygote that died, hangs or answers
  garbage raises :class:`ZygoteError` carrying the zygote's stderr; the test fails loudly, never hangs.

Usage (async tests)::

    async with Zygote.start(("opensqt.cli", "dbos", "grpc"), log=tmp_path / "zygote.log") as z:
        child = await z.spawn("opensqt.cli", ["arb", "--config", str(cfg)], out=tmp_path / "arb.out")
        port = await child.line_containing("opensqt: http://", timeout=60)
        await child.kill()  # SIGKILL, then reaped: child.returncode == -9
        code = await child.wait(timeout=120)

Adopting it in ``engine/test_engine_kill9.py`` and ``engine/test_engine_fleet_kill9.py``: replace each
``asyncio.create_subprocess_exec(sys.executable, "-m", "opensqt.cli", ...)`` with
``await z.spawn("opensqt.cli", [...], out=tmp_path / f"run{n}.out", env=env, cwd=ROOT)`` from one
``Zygote.start(preload)`` per test (``preload`` as in ``opensqt/tests/arb/test_arb_kill9.py`` plus the
modules the command imports lazily, e.g. ``opensqt.app.runner`` / ``opensqt.app.multi``); read the
announced port with :meth:`Child.line_containing` instead of a stdout reader task,
``proc.send_signal(SIGKILL)`` + ``proc.wait()`` become
:meth:`Child.kill`, ``proc.returncode`` is :attr:`Child.returncode`, and the output for an assertion
message is :meth:`Child.tail`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Child", "Zygote", "ZygoteError"]

_REQUEST_SLACK = 10.0  # seconds a request may take beyond its own timeout (a loaded machine)
_START_TIMEOUT = 180.0  # seconds for the zygote's imports (5-14 s here; generous under load)


class ZygoteError(RuntimeError):
    """The zygote died, hung or answered something unexpected (the message carries its stderr)."""


# ----------------------------------------------------------------------------------------------- zygote


def _child(req: Mapping[str, Any]) -> None:
    """In the forked child: become ``python -m module argv...`` and never return to the zygote's loop."""
    os.setsid()  # a kill of the zygote's group does not reach it, and vice versa
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    sys.argv = [req["module"], *req["argv"]]
    runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    raise SystemExit(0)  # the module returned: a normal exit, through the interpreter's shutdown


def _code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _code(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _serve(preload: Sequence[str]) -> int:
    for name in preload:
        importlib.import_module(name)
    if threading.active_count() != 1:
        names = [t.name for t in threading.enumerate()]
        print(f"zygote: preloading started threads {names}; refusing to fork", file=sys.stderr, flush=True)
        return 3
    children: set[int] = set()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "spawn":
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(req)  # raises SystemExit in the child: the interpreter exits from there
            children.add(pid)
            reply: dict[str, Any] = {"pid": pid}
        elif req["op"] == "wait":
            code = _wait(int(req["pid"]), float(req["timeout"])) if req["pid"] in children else None
            if code is not None:
                children.discard(req["pid"])
            reply = {"code": code}
        else:
            reply = {"error": f"unknown op {req['op']!r}"}
        print(json.dumps(reply), flush=True)
    for pid in children:  # the test is gone: nothing it started may outlive it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return 0


# ------------------------------------------------------------------------------------------- test side


class Child:
    """One forked child: its pid, output file and (once reaped) its exit code."""

    def __init__(self, zygote: Zygote, pid: int, out: Path) -> None:
        self.zygote = zygote
        self.pid = pid
        self.out = out
        self.returncode: int | None = None

    def text(self) -> str:
        try:
            return self.out.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    async def line_containing(self, needle: str, *, timeout: float) -> str:
        """The first output line containing ``needle``; ``TimeoutError`` (with the output) otherwise,
        and :class:`ZygoteError` if the child exits without printing it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.text().splitlines():
                if needle in line:
                    return line
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {needle!r} from pid {self.pid} in {timeout} s:\n{self.tail()}")
            if self.returncode is None and await self.zygote.wait(self.pid, 0) is not None:
                self.returncode = self.zygote.codes[self.pid]
            if self.returncode is not None and needle not in self.text():
                raise ZygoteError(
                    f"pid {self.pid} exited {self.returncode} before {needle!r}:\n{self.tail()}"
                )
            await asyncio.sleep(0.02)

    async def wait(self, *, timeout: float) -> int:
        """The exit code (``-SIG`` for a signal); ``TimeoutError`` if still running at ``timeout``."""
        if self.returncode is None:
            code = await self.zygote.wait(self.pid, timeout)
            if code is None:
                raise TimeoutError(f"pid {self.pid} still running after {timeout} s:\n{self.tail()}")
            self.returncode = code
        return self.returncode

    async def kill(self, *, timeout: float = 30.0) -> int:
        """SIGKILL, then reap (a zombie still counts as alive for the lease's dead-owner check)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        return await self.wait(timeout=timeout)


class Zygote:
    """The test side: a running zygote process and its request channel (one request at a time)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.codes: dict[int, int] = {}
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, preload: Sequence[str], *, log: Path, timeout: float = _START_TIMEOUT
    ) -> AsyncIterator[Zygote]:
        """Start a zygote (its stderr goes to ``log``); stopping it SIGKILLs every child left running."""
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cqvx.testing.zygote", *preload,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        z = cls(proc, log)
        try:
            await z._read(timeout, "start")
            yield z
        finally:
            await z.close()

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # EOF: the zygote kills and reaps its children, then exits
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def spawn(
        self,
        module: str,
        argv: Sequence[str],
        *,
        out: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Fork a child running ``python -m module argv...`` (see the module docstring)."""
        reply = await self._request(
            {
                "op": "spawn",
                "module": module,
                "argv": list(argv),
                "env": dict(os.environ if env is None else env),
                "cwd": str(cwd or Path.cwd()),
                "out": str(out),
            },
            timeout=_REQUEST_SLACK,
        )
        return Child(self, int(reply["pid"]), out)

    async def wait(self, pid: int, timeout: float) -> int | None:
        """Reap ``pid`` within ``timeout`` seconds: its exit code, or None while it runs."""
        if pid in self.codes:
            return self.codes[pid]
        req = {"op": "wait", "pid": pid, "timeout": timeout}
        reply = await self._request(req, timeout=timeout + _REQUEST_SLACK)
        code = reply["code"]
        if code is None:
            return None
        self.codes[pid] = int(code)
        return int(code)

    async def _request(self, req: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        async with self._lock:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write((json.dumps(req) + "\n").encode())
                await self.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise self._error(f"{req['op']}: the zygote is gone ({exc})") from None
            return await self._read(timeout, str(req["op"]))

    async def _read(self, timeout: float, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            self.proc.kill()
            raise self._error(f"{what}: no answer from the zygote in {timeout} s") from None
        if not line:
            raise self._error(f"{what}: the zygote exited ({await self.proc.wait()})")
        try:
            reply = json.loads(line)
        except ValueError:
            raise self._error(f"{what}: garbage from the zygote: {line[:200]!r}") from None
        if not isinstance(reply, dict) or "error" in reply:
            raise self._error(f"{what}: {reply!r}")
        return reply

    def _error(self, message: str) -> ZygoteError:
        try:
            err = self.log.read_text(errors="replace")[-4000:]
        except OSError:
            err = ""
        return ZygoteError(f"{message}\n--- zygote stderr ---\n{err}")


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
