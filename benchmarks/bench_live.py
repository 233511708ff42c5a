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
import functools
import json
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MESSAGES = 100
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
    for i in range(MESSAGES):
        sent = time.time_ns()
        t0 = time.perf_counter()
        feed.publish(
            "kline",
            {"time": 60 * i, "open": "1", "high": "1", "low": "1", "close": str(sent), "volume": "1"},
        )
        fanout.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(1 / RATE_HZ)
    stats = {"kb_per_client": (rss1 - rss0) / clients, "idle_cpu_pct": idle, "fanout_p50": _pct(fanout, 0.5)}
    print(json.dumps(stats), flush=True)
    while server.hub.clients:  # noqa: ASYNC110 - waits for the clients to leave
        await asyncio.sleep(0.05)
    await server.stop()


class _Client(asyncio.Protocol):
    """A minimal RFC 6455 client (handshake, unmasked server frames, masked pongs): a few microseconds per
    message, so the measured latency is the hub's, not a client library's."""

    def __init__(self, latencies: list[float], done: asyncio.Future[None]) -> None:
        self.latencies = latencies
        self.done = done
        self.buf = bytearray()
        self.upgraded = False
        self.got = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        received = time.time_ns()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            assert b" 101 " in buf[:end]
            del buf[: end + 4]
            self.upgraded = True
        while len(buf) >= 2:
            opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, pos = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            if opcode == 0x9 and self.transport is not None:  # ping -> masked pong (zero mask)
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 0x1 and payload.startswith(b'{"type":"kline"'):
                start = payload.index(b'"close":"') + 9
                sent = int(payload[start : payload.index(b'"', start)])
                self.latencies.append((received - sent) / 1e6)
                self.got += 1
                if self.got == MESSAGES and not self.done.done():
                    self.done.set_result(None)


async def _clients(port: int, n: int) -> None:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    dones: list[asyncio.Future[None]] = []
    transports = []
    for _ in range(n):
        done: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(
            functools.partial(_Client, latencies, done), "127.0.0.1", port
        )
        transports.append(transport)
        dones.append(done)
    await asyncio.gather(*dones)
    for t in transports:
        t.close()
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
            [sys.executable, me, "--clients", str(port), str(n)], stdout=subprocess.PIPE, text=True
        )
        for n in per
        if n
    ]
    latencies: list[float] = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        latencies.extend(json.loads(out.strip().splitlines()[-1]))
    stats = json.loads(server.stdout.readline())
    server.wait(timeout=60)
    return {"p50": _pct(latencies, 0.5), "p99": _pct(latencies, 0.99), "n": len(latencies), **stats}


def main() -> None:
    print(
        f"{'clients':>8} {'msgs':>7} {'p50 ms':>8} {'p99 ms':>8} {'fan-out ms':>10} {'KB/client':>10} "
        f"{'idle CPU':>9}  target"
    )
    for clients, p99_target, kb_target in SCENARIOS:
        r = _scenario(clients)
        ok = r["p99"] < p99_target and r["kb_per_client"] < kb_target
        print(
            f"{clients:>8} {r['n']:>7} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['fanout_p50']:>10.2f} "
            f"{r['kb_per_client']:>10.1f} "
            f"{r['idle_cpu_pct']:>8.2f}%  p99 < {p99_target:g} ms, < {kb_target:g} KB: "
            f"{'met' if ok else 'NOT met'}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--clients":
        asyncio.run(_clients(int(sys.argv[2]), int(sys.argv[3])))
    else:
        main()
