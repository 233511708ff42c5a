"""The live page's hub: broadcast latency (engine event -> client receive), memory per client, idle CPU.

The server (a :class:`LiveServer` and its :class:`LiveFeed`, exactly what the engine embeds) runs in its
own process; the WebSocket clients run in two other processes, so the server's figures are its own.
Each event is a ``kline`` published through ``LiveFeed.publish`` (what the engine bridge calls) whose
``close`` carries the publish time (``time.time_ns()``); each client records ``receive time - publish
time``; "fan-out" is the server's own time to write one message to every client (the part the hub
controls; on loopback each ``send()`` also runs the receiver's TCP path, and the client processes share
the same cores).  Memory per client is the server's RSS growth from 0 to N connected clients, divided by
N; idle CPU is the server's CPU time over 3 s with N clients connected and nothing to send (pings only).
The per-IP connection rate limit is raised for the run (every client comes from 127.0.0.1).

Targets: the seed (the rewrite's hub, reference §5.3): 100 clients, < 50 ms, < 1 MB per client; ours:
1,000 clients, p99 < 10 ms, < 100 KB per client.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

MESSAGES = 100
# An order update: an event the feed never holds back (conflated state, e.g. ``position``, waits up to
# 0.25 s by design, docs/live.md); its ``price`` carries the publish time.
_ORDER = {
    "side": "BUY",
    "status": "NEW",
    "type": "LIMIT",
    "symbol": "BENCH",
    "quantity": "1",
    "executedQty": "0",
}
RATE_HZ = 20
CLIENT_PROCS = 2
SCENARIOS = ((100, 50.0, 1024.0), (1000, 10.0, 100.0))  # clients, p99 target ms, KB per client target


def _rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _serve(clients: int) -> None:
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
    while server.hub.clients < clients:  # noqa: ASYNC110 - a benchmark's start line, polled
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    rss1 = _rss_kb()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    await asyncio.sleep(3.0)
    idle = (_cpu_s() - cpu0) / (time.perf_counter() - t0) * 100
    fanout: list[float] = []
    floor: list[float] = []
    fds = [c.transport.get_extra_info("socket").fileno() for c in server.hub._clients]
    for i in range(MESSAGES):
        sent = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for every process on the machine
        feed.publish("orders", {**_ORDER, "id": i + 1, "price": str(sent)})
        fanout.append((time.monotonic_ns() - sent) / 1e6)
        await asyncio.sleep(1 / RATE_HZ / 2)
        floor.append(_syscall_floor(fds, sent))
        await asyncio.sleep(1 / RATE_HZ / 2)
    stats = {
        "kb_per_client": (rss1 - rss0) / clients,
        "idle_cpu_pct": idle,
        "fanout_p50": _pct(fanout, 0.5),
        "fanout_p99": _pct(fanout, 0.99),
        "floor_p50": _pct(floor, 0.5),
    }
    print(json.dumps(stats), flush=True)
    while server.hub.clients:  # noqa: ASYNC110 - waits for the clients to leave
        await asyncio.sleep(0.05)
    await server.stop()


def _syscall_floor(fds: list[int], sent: int) -> float:
    """The kernel's share of a fan-out: the same-sized frame written with bare ``os.write`` to every
    client socket, no Python per client but the call (the clients skip it: it is not an order)."""
    body = json.dumps({"type": "probe", "data": {"price": str(sent), "pad": "x" * 86}}).encode()
    frame = struct.pack("!BBH", 0x81, 126, len(body)) + body  # as long as an order message
    t0 = time.monotonic_ns()
    for fd in fds:
        os.write(fd, frame)
    return (time.monotonic_ns() - t0) / 1e6


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


def _clients(port: int, n: int) -> None:
    """``n`` raw clients on one epoll loop: each wake-up is one ``recv`` and one ``monotonic_ns`` per
    socket, parsed in place (a few microseconds), so the latency measured is the hub's, not a client
    library's.  Pings are answered (masked pong, zero mask).  Stops when the parent writes a line."""
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
    latencies: list[float] = []
    clock = time.monotonic_ns
    running = True
    while running:
        for fd, _ in ep.poll():
            if fd == stdin:
                running = False
                continue
            data = socks[fd].recv(65536)
            received = clock()
            if not data:
                ep.unregister(fd)
                continue
            buf = bufs[fd]
            buf += data
            for opcode, payload in _frames(buf):
                if opcode == 0x9:
                    socks[fd].send(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                elif opcode == 0x1 and payload.startswith(b'{"type":"orders","data":{'):
                    start = payload.index(b'"price":"') + 9
                    latencies.append((received - int(payload[start : payload.index(b'"', start)])) / 1e6)
    for sock in socks.values():
        sock.close()
    print(json.dumps(latencies), flush=True)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _scenario(clients: int) -> dict[str, Any]:
    me = str(Path(__file__).resolve())
    server = subprocess.Popen(
        [sys.executable, me, "--serve", str(clients)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    port = json.loads(server.stdout.readline())["port"]
    per = [clients // CLIENT_PROCS + (1 if i < clients % CLIENT_PROCS else 0) for i in range(CLIENT_PROCS)]
    procs = [
        subprocess.Popen(
            [sys.executable, me, "--clients", str(port), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in per
        if n
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    stats = json.loads(server.stdout.readline())  # the server has sent every message
    time.sleep(0.5)  # the last ones land
    latencies: list[float] = []
    for p in procs:
        out, _ = p.communicate("stop\n", timeout=120)
        latencies.extend(json.loads(out.strip().splitlines()[-1]))
    server.wait(timeout=60)
    return {"p50": _pct(latencies, 0.5), "p99": _pct(latencies, 0.99), "n": len(latencies), **stats}


def main(only: list[int]) -> None:
    print(
        f"{'clients':>8} {'msgs':>7} {'p50 ms':>8} {'p99 ms':>8} {'fan-out':>8} {'os.write':>9} "
        f"{'KB/client':>10} {'idle CPU':>9}  target"
    )
    for clients, p99_target, kb_target in SCENARIOS:
        if only and clients not in only:
            continue
        r = _scenario(clients)
        ok = r["p99"] < p99_target and r["kb_per_client"] < kb_target
        print(
            f"{clients:>8} {r['n']:>7} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['fanout_p50']:>8.2f} "
            f"{r['floor_p50']:>9.2f} {r['kb_per_client']:>10.1f} {r['idle_cpu_pct']:>8.2f}%  "
            f"p99 < {p99_target:g} ms, < {kb_target:g} KB: {'met' if ok else 'NOT met'}"
        )
    print(
        "fan-out: the server's time to write one message to every client (p50, ms); os.write: the same "
        "frame\nwritten with bare os.write to every socket (the kernel's floor for that fan-out, p50, ms)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--clients":
        _clients(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main([int(a) for a in sys.argv[1:]])
