// The generated gRPC clients: every service of the contracts is in the clients table, and a client
// talks real gRPC (HTTP/2, binary protobuf) to an in-process server built from the same descriptors:
// unary calls, a server stream, an error status and the bearer token. The client against the real
// Python connector is tested from opensqt/tests/connector/test_connector_node.py.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { create, type DescService } from "@bufbuild/protobuf";
import { type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

import {
  Code,
  ConnectError,
  createVenueGatewayClient,
  services,
  VenueGateway,
} from "../src/clients.js";
import { BalanceSchema, BalanceType } from "../src/gen/cqc/venues/v1/balance_pb.js";
import { TradeSchema } from "../src/gen/cqc/markets/v1/trade_pb.js";
import { createCqcGrpcTransport } from "../src/node.js";

const TOKEN = "t0ken-for-tests";

test("every generated service is in the clients table", async () => {
  const genDir = fileURLToPath(new URL("../src/gen/", import.meta.url));
  const found: string[] = [];
  const modules = readdirSync(genDir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith("_pb.js"));
  for (const rel of modules) {
    const mod = (await import(pathToFileURL(genDir + rel).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if ((value as DescService | undefined)?.kind === "service") {
        found.push((value as DescService).typeName);
      }
    }
  }
  const table = Object.values(services).map((s: DescService) => s.typeName);
  assert.deepEqual(table.sort(), found.sort());
  assert.ok(found.includes("cqc.services.v1.VenueGateway"));
});

function authorized(ctx: HandlerContext): void {
  if (ctx.requestHeader.get("authorization") !== `Bearer ${TOKEN}`) {
    throw new ConnectError("missing or invalid bearer token", Code.Unauthenticated);
  }
}

function routes(router: ConnectRouter): void {
  router.service(VenueGateway, {
    getBalances(req, ctx) {
      authorized(ctx);
      if (req.venue !== "sim") {
        throw new ConnectError(`unknown venue ${req.venue}`, Code.NotFound);
      }
      const balance = create(BalanceSchema, {
        venue: "sim",
        asset: "USD",
        balanceType: BalanceType.SPOT,
        total: "10000.00",
      });
      return { balances: [balance] };
    },
    async *streamTrades(req, ctx) {
      authorized(ctx);
      for (let i = 1; i <= 3; i++) {
        const trade = create(TradeSchema, { tradeId: `t${i}`, symbol: req.symbol, price: `5000${i}` });
        yield { sequence: BigInt(i), event: { case: "trade", value: trade } };
      }
    },
  });
}

async function withServer(body: (baseUrl: string) => Promise<void>): Promise<void> {
  const server = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await body(`http://127.0.0.1:${port}`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test("a VenueGateway client calls unary and streaming RPCs over gRPC", async () => {
  await withServer(async (baseUrl) => {
    const transport = createCqcGrpcTransport({ baseUrl, token: TOKEN, idleConnectionTimeoutMs: 1 });
    const gw = createVenueGatewayClient(transport);

    const resp = await gw.getBalances({ venue: "sim" }, { timeoutMs: 5000 });
    assert.deepEqual(
      resp.balances.map((b) => [b.venue, b.asset, b.balanceType, b.total]),
      [["sim", "USD", BalanceType.SPOT, "10000.00"]],
    );

    const trades: [bigint, string, string][] = [];
    for await (const msg of gw.streamTrades({ venue: "sim", symbol: "BTC-USD" }, { timeoutMs: 5000 })) {
      assert.equal(msg.event.case, "trade");
      if (msg.event.case === "trade") {
        trades.push([msg.sequence, msg.event.value.tradeId, msg.event.value.price]);
      }
    }
    assert.deepEqual(trades, [
      [1n, "t1", "50001"],
      [2n, "t2", "50002"],
      [3n, "t3", "50003"],
    ]);

    await assert.rejects(gw.getBalances({ venue: "nope" }), (err: unknown) => {
      const e = ConnectError.from(err);
      return e.code === Code.NotFound && e.rawMessage === "unknown venue nope";
    });
  });
});

test("without the bearer token the call is refused", async () => {
  await withServer(async (baseUrl) => {
    const gw = createVenueGatewayClient(createCqcGrpcTransport({ baseUrl, idleConnectionTimeoutMs: 1 }));
    await assert.rejects(gw.getBalances({ venue: "sim" }), (err: unknown) => {
      return ConnectError.from(err).code === Code.Unauthenticated;
    });
  });
});

test("an empty bearer token is a configuration error, not an unauthenticated call", () => {
  assert.throws(() => createCqcGrpcTransport({ baseUrl: "http://127.0.0.1:1", token: "" }), /token is empty/);
});
