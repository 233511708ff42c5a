"""Connector overhead: PlaceOrder through the gRPC connector (RemoteVenue -> VenueGateway -> venue) vs
the same call in-process, orders per second, and stream messages per second to 1 and to 10 clients.

Client and server share one process and one event loop (and this machine's CPU), so every figure
includes both sides' Python work.  Original targets: overhead p50 < 2 ms, p99 < 5 ms, > 1000 orders/s,
> 5000 stream messages/s.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import structlog

from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from opensqt.connector import ConnectorConfig, ConnectorServer, RemoteVenue, TopicKey

N_LATENCY = 2000
ORDERS_SECONDS = 2.0
IN_FLIGHT = 64


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _latencies(place: Any, venue: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        order = builders.order(venue=venue)
        t0 = time.perf_counter()
        await place(order)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def _throughput(remote: RemoteVenue) -> float:
    done = 0
    stop = time.perf_counter() + ORDERS_SECONDS

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await remote.place_order(builders.order(venue="mock"))
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return done / (time.perf_counter() - t0)


async def _stream_rate(server: ConnectorServer, mock: MockVenue, clients: int, total: int) -> float:
    remotes = [await RemoteVenue.connect(server.address) for _ in range(clients)]
    streams = [r.subscribe_trades("BTC-USD") for r in remotes]
    received = [0] * clients

    async def read(i: int) -> None:
        async for _ in streams[i]:
            received[i] += 1
            if received[i] == total:
                return

    readers = [asyncio.ensure_future(read(i)) for i in range(clients)]
    async with asyncio.timeout(10):
        # The hub has no subscribe event.
        while server.hub.subscribers("trades") < clients:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    trade = builders.trade(venue="mock", symbol="BTC-USD")
    batch = 200  # below the subscriber queue, so nobody is dropped as a slow client
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        for _ in range(min(batch, total - sent)):
            mock.stream("trades").push_nowait(trade)
            sent += 1
        # A busy yield keeps the measurement tight.
        while min(received) < sent - batch // 2:  # noqa: ASYNC110
            await asyncio.sleep(0)
    await asyncio.gather(*readers)
    elapsed = time.perf_counter() - t0
    assert server.hub.topic_stats(TopicKey("mock", "trades", "BTC-USD")) is not None
    assert mock.call_count("subscribe_trades") >= 1
    for s in streams:
        await s.aclose()
    for r in remotes:
        await r.aclose()
    return clients * total / elapsed


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    mock = MockVenue("mock", check_funds=False)
    server = ConnectorServer([mock], ConnectorConfig(port=0, health_interval=60.0), close_venues=False)
    await server.start()
    remote = await RemoteVenue.connect(server.address)

    await _latencies(mock.place_order, "mock", 200)  # warm-up
    await _latencies(remote.place_order, "mock", 200)
    local = await _latencies(mock.place_order, "mock", N_LATENCY)
    through = await _latencies(remote.place_order, "mock", N_LATENCY)
    l50, l99 = statistics.median(local), _pct(local, 0.99)
    r50, r99 = statistics.median(through), _pct(through, 0.99)
    print(f"PlaceOrder in-process      p50 {l50:7.3f} ms   p99 {l99:7.3f} ms   (n={N_LATENCY})")
    print(f"PlaceOrder via connector   p50 {r50:7.3f} ms   p99 {r99:7.3f} ms")
    print(
        f"overhead                   p50 {r50 - l50:7.3f} ms   p99 {r99 - l99:7.3f} ms   (targets < 2 / < 5)"
    )
    print(f"ratio connector/in-process p50 {r50 / l50:7.1f}x")
    ops = await _throughput(remote)
    print(
        f"orders/s via connector     {ops:9.0f}   ({IN_FLIGHT} in flight, {ORDERS_SECONDS:g} s;"
        " target > 1000)"
    )
    one = await _stream_rate(server, mock, 1, 20000)
    print(f"stream msgs/s, 1 client    {one:9.0f}   (target > 5000)")
    ten = await _stream_rate(server, mock, 10, 3000)
    print(f"stream msgs/s, 10 clients  {ten:9.0f}   (total delivered, one upstream subscription)")
    await remote.aclose()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
