// A Node client of the connector built with the published API of the cqc npm package: the generated
// gRPC clients (@connectrpc/connect on the protoc-gen-es descriptors) and its gRPC transport with the
// bearer token, loaded from the compiled package (cqc/typescript/dist/src, as `npm pack` ships it).
//
// Usage: node cqc_client.mjs <base-url> <venue> <symbol> <token> <prices-to-read>
// Prints one JSON object per line; the pytest side asserts on them.

const dist = new URL("../../../../cqc/typescript/dist/src/", import.meta.url);
const { Code, ConnectError, createVenueGatewayClient } = await import(new URL("clients.js", dist).href);
const { createCqcGrpcTransport } = await import(new URL("node.js", dist).href);

const [baseUrl, venue, symbol, token, wanted] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const call = { timeoutMs: 10000 };

const gw = createVenueGatewayClient(createCqcGrpcTransport({ baseUrl, token }));

const venues = await gw.listVenues({}, call);
out({ venues: venues.venues.map((v) => v.venueId) });

const health = await gw.getVenueHealth({ venue }, call);
out({ health: health.health?.venue ?? null });

const balances = await gw.getBalances({ venue }, call);
out({ balances: Object.fromEntries(balances.balances.map((b) => [b.asset, b.total])) });

// A wrong token: the connector refuses the call with UNAUTHENTICATED before it reaches the venue.
const intruder = createVenueGatewayClient(createCqcGrpcTransport({ baseUrl, token: "wrong-token" }));
try {
  await intruder.getBalances({ venue }, call);
  out({ refused: null });
} catch (err) {
  out({ refused: ConnectError.from(err).code === Code.Unauthenticated ? "unauthenticated" : String(err) });
}

const abort = new AbortController();
let seen = 0;
try {
  for await (const msg of gw.streamPrices({ venue, symbols: [symbol] }, { signal: abort.signal })) {
    if (msg.event.case === "price") {
      out({ sequence: Number(msg.sequence), symbol: msg.event.value.symbol, last: msg.event.value.last });
      seen += 1;
      if (seen === Number(wanted)) {
        abort.abort();
      }
    }
  }
} catch (err) {
  if (ConnectError.from(err).code !== Code.Canceled) {
    throw err;
  }
}
out({ done: true });
