"""The live page's hub: broadcast latency (engine event -> client receive), memory per client, idle CPU.

The server (a :class:`LiveServer` and its :class:`LiveFeed`, exactly what the engine embeds) runs in its
own process; the WebSocket clients run in ``CLIENT_PROCS`` other processes (raw RFC 6455 clients on one
``epoll`` loop each), so the server's figures are its own.  Each event is an ``orders`` update published
through ``LiveFeed.publish`` (what the engine bridge calls; an event, never conflated) whose ``price``
carries the publish time, ``time.time_ns()`` (CLOCK_REALTIME, one clock for every process here).

Two receive times per message and client:

* **kernel**: the time the kernel queued the bytes on the client's socket (``SO_TIMESTAMPNS``, the
  same clock): what "the client received it" means on a network, and independent of how soon the load
  generator's Python gets to read it;
* **app**: ``time.time_ns()`` right after the client's ``recvmsg`` (adds the load generator's own
  scheduling: 4 processes of Python on the 2 cores the server uses too).

``fan-out`` is the server's time to write one message to every client, wall and CPU (its thread's CPU
time: the work itself, without the time other processes held the core); ``os.write`` is the same-sized
frame written with a bare ``os.write`` loop to the same sockets, the kernel's floor for that fan-out
(on loopback each ``write`` also runs the receiver's TCP input and wake-up in the sender's system call).
Memory per client is the server's RSS growth from 0 to N connected clients, divided by N; idle CPU is
the server's CPU time over 3 s with N clients connected and nothing to send (pings only).  The per-IP
connection rate limit is raised for the run (every client comes from 127.0.0.1).

The server runs on asyncio's default loop (what the engine and ``opensqt live`` use); ``--loops
asyncio,uvloop`` alternates it with uvloop (measured no better: docs/live.md).  The README rows are the
default loop's.

Targets: the seed (the rewrite's hub, reference §5.3): 100 clients, < 50 ms, < 1 MB per client; ours:
1,000 clients, p99 < 10 ms, < 100 KB per client.

``--relays K`` adds, per scenario, a run with K ``opensqt live`` relays (a :class:`Relay` feeding a
:class:`LiveServer`, each in its own process) between the engine's hub and the pages: the scale-out the
relay allows (the pages split over K processes; latency is still from the engine's publish).

Run ``python benchmarks/bench_live.py [--rounds R] [--loops asyncio,uvloop] [--relays K] [N ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

MESSAGES = 100
_ORDER = {
    "side": "BUY",
    "status": "NEW",
    "type": "LIMIT",
    "symbol": "BENCH",
    "quantity": "1",
    "executedQty": "0",
}
RATE_HZ = 20
CLIENT_PROCS = 4
SCENARIOS = ((100, 50.0, 1024.0), (1000, 10.0, 100.0))  # clients, p99 target ms, KB per client target
SO_TIMESTAMPNS = 35  # Linux <asm-generic/socket.h>: the kernel's receive time (CLOCK_REALTIME) per read


def _rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _serve(clients: int, relays: int) -> None:
    """The engine's side: ``clients`` pages (or ``relays`` relays in front of them) on its hub."""
    import structlog

    from opensqt.live.feed import LiveFeed
    from opensqt.live.hub import HubLimits
    from opensqt.live.server import LiveServer

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    feed = LiveFeed()
    limits = HubLimits(max_clients=clients + 10, rate_per_ip=1e6, burst_per_ip=clients + 10, ping_interval=20)
    server = LiveServer(feed, limits)
    port = await server.start("127.0.0.1", 0)
    rss0 = _rss_kb()
    print(json.dumps({"port": port}), flush=True)
    while server.hub.clients < (relays or clients):  # noqa: ASYNC110 - a benchmark's start line, polled
        await asyncio.sleep(0.05)
    # the runner says when every page is connected (to this hub, or to the relays)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(0.5)
    rss1 = _rss_kb()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    await asyncio.sleep(3.0)
    idle = (_cpu_s() - cpu0) / (time.perf_counter() - t0) * 100
    wall: list[float] = []
    cpu: list[float] = []
    floor_wall: list[float] = []
    floor_cpu: list[float] = []
    fds = [c.transport.get_extra_info("socket").fileno() for c in server.hub._clients]
    for i in range(MESSAGES):
        c0 = time.thread_time_ns()
        sent = time.time_ns()
        feed.publish("orders", {**_ORDER, "id": i + 1, "price": str(sent)})
        wall.append((time.time_ns() - sent) / 1e6)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        await asyncio.sleep(1 / RATE_HZ / 2)
        fw, fc = _syscall_floor(fds, sent)
        floor_wall.append(fw)
        floor_cpu.append(fc)
        await asyncio.sleep(1 / RATE_HZ / 2)
    stats = {
        "kb_per_client": (rss1 - rss0) / clients if not relays else float("nan"),
        "idle_cpu_pct": idle if not relays else float("nan"),
        "fanout_p50": _pct(wall, 0.5),
        "fanout_p99": _pct(wall, 0.99),
        "fanout_cpu_p50": _pct(cpu, 0.5),
        "floor_p50": _pct(floor_wall, 0.5),
        "floor_cpu_p50": _pct(floor_cpu, 0.5),
    }
    print(json.dumps(stats), flush=True)
    while server.hub.clients:  # noqa: ASYNC110 - waits for the clients to leave
        await asyncio.sleep(0.05)
    await server.stop()


async def _relay(upstream: int, share: int) -> None:
    """One ``opensqt live`` (a :class:`LiveServer` fed by a :class:`Relay`) following the engine's hub;
    prints its port once it follows, ``full`` once ``share`` pages are connected, then its memory per
    page; stops when the runner writes a line."""
    import structlog

    from opensqt.live.feed import LiveFeed
    from opensqt.live.hub import HubLimits
    from opensqt.live.relay import Relay
    from opensqt.live.server import LiveServer

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    feed = LiveFeed()
    limits = HubLimits(max_clients=share + 10, rate_per_ip=1e6, burst_per_ip=share + 10, ping_interval=20)
    server = LiveServer(feed, limits)
    relay = Relay(feed, f"http://127.0.0.1:{upstream}")
    task = asyncio.create_task(relay.run())
    port = await server.start("127.0.0.1", 0)
    while not relay.connected:  # noqa: ASYNC110 - a benchmark's start line, polled
        await asyncio.sleep(0.05)
    rss0 = _rss_kb()
    print(json.dumps({"port": port}), flush=True)
    while server.hub.clients < share:  # noqa: ASYNC110 - polled as above
        await asyncio.sleep(0.05)
    print(json.dumps({"kb_per_client": (_rss_kb() - rss0) / share}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    task.cancel()
    await server.stop()


def _syscall_floor(fds: list[int], sent: int) -> tuple[float, float]:
    """The kernel's share of a fan-out: the same-sized frame written with bare ``os.write`` to every
    client socket, no Python per client but the call (the clients skip it: it is not an order).
    Returns (wall ms, CPU ms)."""
    body = json.dumps({"type": "probe", "data": {"price": str(sent), "pad": "x" * 86}}).encode()
    frame = struct.pack("!BBH", 0x81, 126, len(body)) + body  # as long as an order message
    c0, t0 = time.thread_time_ns(), time.monotonic_ns()
    for fd in fds:
        os.write(fd, frame)
    return (time.monotonic_ns() - t0) / 1e6, (time.thread_time_ns() - c0) / 1e6


_HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _connect(port: int) -> tuple[socket.socket, bytearray]:
    """One raw RFC 6455 client: the handshake, blocking; returns the socket and what followed the 101."""
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(_HANDSHAKE.format(key=key).encode())
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed during the handshake")
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    if b" 101 " not in buf[:end]:
        raise ConnectionError(bytes(buf[:end]).decode(errors="replace"))
    del buf[: end + 4]
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    return sock, buf


def _frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete frames at the head of ``buf`` (consumed); server frames are unmasked (RFC 6455 5.2)."""
    out = []
    while len(buf) >= 2:
        opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = struct.unpack_from("!H", buf, 2)[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
        if len(buf) < pos + n:
            break
        out.append((opcode, bytes(buf[pos : pos + n])))
        del buf[: pos + n]
    return out


def _kernel_ns(ancillary: list[tuple[int, int, bytes]], default: int) -> int:
    """The newest ``SCM_TIMESTAMPNS`` of a read (the time its last byte was queued on the socket)."""
    for _level, kind, raw in ancillary:
        if kind == SO_TIMESTAMPNS and len(raw) >= 16:
            sec, nsec = struct.unpack_from("qq", raw)
            return int(sec) * 1_000_000_000 + int(nsec)
    return default


def _clients(port: int, n: int) -> None:
    """``n`` raw clients on one epoll loop: each wake-up is one ``recvmsg`` and one ``time_ns`` per
    socket, parsed in place, so the app latency is the hub's plus this loop's scheduling, not a client
    library's.  Pings are answered (masked pong, zero mask).  Stops when the parent writes a line; prints
    one ``[app ms, kernel ms]`` pair per order message received."""
    socks = {}
    bufs = {}
    for _ in range(n):
        sock, rest = _connect(port)
        socks[sock.fileno()] = sock
        bufs[sock.fileno()] = rest
    ep = select.epoll()
    for fd in socks:
        ep.register(fd, select.EPOLLIN)
    stdin = sys.stdin.fileno()
    ep.register(stdin, select.EPOLLIN)
    print("ready", flush=True)
    latencies: list[tuple[float, float]] = []
    clock = time.time_ns
    prefix = b'{"type":"orders","data":{'
    running = True
    while running:
        for fd, _ in ep.poll():
            if fd == stdin:
                running = False
                continue
            data, anc, _flags, _addr = socks[fd].recvmsg(65536, 64)
            received = clock()
            if not data:
                ep.unregister(fd)
                continue
            kernel = _kernel_ns(anc, received)
            buf = bufs[fd]
            buf += data
            for opcode, payload in _frames(buf):
                if opcode == 0x9:
                    socks[fd].send(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                elif opcode == 0x1 and payload.startswith(prefix):
                    start = payload.index(b'"price":"') + 9
                    sent = int(payload[start : payload.index(b'"', start)])
                    latencies.append(((received - sent) / 1e6, (kernel - sent) / 1e6))
    for sock in socks.values():
        sock.close()
    print(json.dumps(latencies), flush=True)


def _line_of(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _scenario(clients: int, loop: str, relays: int = 0) -> dict[str, Any]:
    me = str(Path(__file__).resolve())
    load = os.getloadavg()[0]
    server = subprocess.Popen(
        [sys.executable, me, "--serve", str(clients), loop, str(relays)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    port = json.loads(server.stdout.readline())["port"]
    per = [clients // CLIENT_PROCS + (1 if i < clients % CLIENT_PROCS else 0) for i in range(CLIENT_PROCS)]
    ports = [port]
    middle: list[subprocess.Popen[str]] = []
    if relays:  # client process i goes to relay i % relays
        shares = [sum(n for i, n in enumerate(per) if i % relays == r) for r in range(relays)]
        middle = [
            subprocess.Popen(
                [sys.executable, me, "--relay", str(port), str(share), loop],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for share in shares
        ]
        ports = [json.loads(_line_of(m))["port"] for m in middle]
    procs = [
        subprocess.Popen(
            [sys.executable, me, "--clients", str(ports[i % len(ports)]), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, n in enumerate(per)
        if n
    ]
    for p in procs:
        assert _line_of(p).strip() == "ready"
    relay_kb = [json.loads(_line_of(m))["kb_per_client"] for m in middle]
    server.stdin.write("go\n")
    server.stdin.flush()
    stats = json.loads(server.stdout.readline())  # the server has sent every message
    if relay_kb:
        stats["kb_per_client"] = sum(relay_kb) / len(relay_kb)
    time.sleep(0.5)  # the last ones land
    app: list[float] = []
    kernel: list[float] = []
    for p in procs:
        out, _ = p.communicate("stop\n", timeout=120)
        for a, k in json.loads(out.strip().splitlines()[-1]):
            app.append(a)
            kernel.append(k)
    for m in middle:
        m.communicate("stop\n", timeout=60)
    server.wait(timeout=60)
    return {
        "clients": clients,
        "loop": f"{loop}/{relays}r" if relays else loop,
        "load": (load + os.getloadavg()[0]) / 2,
        "n": len(kernel),
        "k50": _pct(kernel, 0.5),
        "k99": _pct(kernel, 0.99),
        "kmax": max(kernel, default=float("nan")),
        "a50": _pct(app, 0.5),
        "a99": _pct(app, 0.99),
        "amax": max(app, default=float("nan")),
        **stats,
    }


_HEAD = (
    f"{'clients':>7} {'loop':>7} {'load':>5} {'msgs':>6} | {'kernel receive p50/p99/max ms':>29} | "
    f"{'app receive p50/p99/max ms':>26} | {'fan-out ms':>10} {'cpu':>5} | {'os.write':>8} {'cpu':>5} | "
    f"{'KB/cl':>6} {'idle':>6}"
)


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['clients']:>7} {r['loop']:>7} {r['load']:>5.1f} {r['n']:>6} | "
        f"{r['k50']:>9.2f} {r['k99']:>9.2f} {r['kmax']:>9.2f} | "
        f"{r['a50']:>8.2f} {r['a99']:>8.2f} {r['amax']:>8.2f} | "
        f"{r['fanout_p50']:>10.2f} {r['fanout_cpu_p50']:>5.2f} | "
        f"{r['floor_p50']:>8.2f} {r['floor_cpu_p50']:>5.2f} | "
        f"{r['kb_per_client']:>6.1f} {r['idle_cpu_pct']:>5.2f}%"
    )


def _row(row: str, ours: float, unit: str, target: str = "", peer: float | None = None) -> None:
    fields: dict[str, Any] = {"bench": "live", "row": row, "ours": ours, "unit": unit, "target": target}
    fields["lower_is_better"] = True
    if peer is not None:  # the kernel's floor: the same writes from a bare loop
        fields |= {"peer": peer, "peer_name": "bare os.write loop, same sockets"}
    print("BENCH-ROW " + json.dumps(fields))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clients", nargs="*", type=int)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--loops", default="asyncio", help="asyncio and/or uvloop, comma-separated")
    parser.add_argument(
        "--relays",
        type=int,
        default=0,
        help="also run each scenario through this many `opensqt live` relays in front of the engine's hub",
    )
    args = parser.parse_args(argv)
    loops = args.loops.split(",")
    print(_HEAD)
    results: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for clients, _target, _kb in SCENARIOS:
            if args.clients and clients not in args.clients:
                continue
            for loop in loops:
                for relays in (0, args.relays) if args.relays else (0,):
                    r = _scenario(clients, loop, relays)
                    results.append(r)
                    print(_line(r), flush=True)
    print(
        "kernel receive: SO_TIMESTAMPNS on the client socket; app receive: after the client's recvmsg.\n"
        "fan-out: the server writing one message to every client (p50 wall, p50 CPU of its thread);\n"
        "os.write: the same frame with a bare os.write loop to the same sockets (the kernel's floor)."
    )
    for clients, p99_target, kb_target in SCENARIOS:
        mine = [r for r in results if r["clients"] == clients and r["loop"] == loops[0]]
        if not mine:
            continue
        r = mine[-1]
        ok = r["k99"] < p99_target and r["kb_per_client"] < kb_target
        print(
            f"{clients} clients ({loops[0]}): p99 {r['k99']:.1f} ms (target < {p99_target:g}), "
            f"{r['kb_per_client']:.1f} KB/client (target < {kb_target:g}): {'met' if ok else 'NOT met'}"
        )
        name = f"{clients:,} WebSocket clients"
        _row(f"{name}, broadcast p99 (kernel receive)", r["k99"], "ms", f"< {p99_target:g} ms")
        if clients == 1000:
            _row(f"{name}, fan-out CPU p50", r["fanout_cpu_p50"], "ms", peer=r["floor_cpu_p50"])
            _row(f"{name}, memory per client", r["kb_per_client"], "KB", f"< {kb_target:g} KB")


def _run(main: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    else:
        asyncio.run(main)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        _run(_serve(int(sys.argv[2]), int(sys.argv[4])), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--relay":
        _run(_relay(int(sys.argv[2]), int(sys.argv[3])), sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--clients":
        _clients(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(sys.argv[1:])
