// A Node client of the connector built on the cqc TypeScript contracts (protoc-gen-es v2 output,
// compiled to cqc/typescript/dist) and @grpc/grpc-js.  protoc-gen-es emits descriptors, not grpc-js
// stubs, so the client is assembled from the service descriptor with toBinary/fromBinary serializers.
//
// Usage: node venue_gateway_client.mjs <host:port> <venue> <symbol> <trades-to-read>
// Prints one JSON object per line; the pytest side asserts on them.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { AnySchema } from "@bufbuild/protobuf/wkt";

const grpcPath = process.env.GRPC_JS_PATH; // development only: a grpc-js installed elsewhere
const grpc = await import(grpcPath ?? "@grpc/grpc-js");

const root = new URL("../../../../cqc/typescript/dist/src/gen/cqc/", import.meta.url);
const gw = await import(new URL("services/v1/venue_gateway_pb.js", root).href);
const orderPb = await import(new URL("venues/v1/order_pb.js", root).href);
const errorPb = await import(new URL("venues/v1/error_pb.js", root).href);

const [address, venue, symbol, wanted] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// grpc-js service definition from the protobuf-es service descriptor.
const definition = {};
for (const method of gw.VenueGateway.methods) {
  definition[method.localName] = {
    path: `/${gw.VenueGateway.typeName}/${method.name}`,
    requestStream: false,
    responseStream: method.methodKind === "server_streaming",
    requestSerialize: (msg) => Buffer.from(toBinary(method.input, msg)),
    requestDeserialize: (buf) => fromBinary(method.input, buf),
    responseSerialize: (msg) => Buffer.from(toBinary(method.output, msg)),
    responseDeserialize: (buf) => fromBinary(method.output, buf),
  };
}
const Client = grpc.makeGenericClientConstructor(definition, "VenueGateway");
const client = new Client(address, grpc.credentials.createInsecure());
const deadline = () => ({ deadline: Date.now() + 5000 });

// The standard rich error model: a google.rpc.Status (1 code, 2 message, 3 repeated Any details) in
// the grpc-status-details-bin trailer; the connector packs one cqc.venues.v1.VenueError into it.
function venueErrorOf(err) {
  const [bin] = err.metadata.get("grpc-status-details-bin");
  if (!bin) return null;
  const reader = new BinaryReader(bin);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 3) {
      reader.skip(wireType);
      continue;
    }
    const any = fromBinary(AnySchema, reader.bytes());
    if (any.typeUrl.endsWith("/cqc.venues.v1.VenueError")) return fromBinary(errorPb.VenueErrorSchema, any.value);
  }
  return null;
}

function unary(name, request) {
  return new Promise((resolve, reject) => {
    client[name](request, new grpc.Metadata(), deadline(), (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

const venues = await unary("listVenues", create(gw.ListVenuesRequestSchema, {}));
out({ venues: venues.venues.map((v) => v.venueId) });

const order = create(orderPb.OrderSchema, {
  clientOrderId: "node-order-1",
  symbol,
  side: orderPb.OrderSide.BUY,
  orderType: orderPb.OrderType.LIMIT,
  timeInForce: orderPb.TimeInForce.GTC,
  quantity: "0.01",
  price: "50000",
});
const placed = await unary("placeOrder", create(gw.PlaceOrderRequestSchema, { venue, order }));
out({ placed: placed.report.clientOrderId, orderId: placed.report.orderId, status: placed.report.orderStatus });

// A refused order: the taxonomy travels as a status code plus the VenueError rich-status detail.
try {
  await unary("placeOrder", create(gw.PlaceOrderRequestSchema, { venue, order: { ...order, clientOrderId: "" } }));
  out({ error: null });
} catch (err) {
  const detail = venueErrorOf(err);
  out({ error: err.code, kind: errorPb.ErrorKind[detail.kind].toLowerCase(), message: detail.message });
}

const call = client.streamTrades(create(gw.StreamTradesRequestSchema, { venue, symbol }));
call.on("metadata", () => out({ subscribed: true }));
let seen = 0;
call.on("data", (resp) => {
  if (resp.event.case === "trade") {
    out({ sequence: Number(resp.sequence), trade: resp.event.value.tradeId, price: resp.event.value.price });
    seen += 1;
    if (seen === Number(wanted)) {
      call.cancel();
      client.close();
      out({ done: true });
    }
  }
});
call.on("error", (err) => {
  if (err.code !== grpc.status.CANCELLED) {
    out({ streamError: err.code, details: err.details });
    process.exitCode = 1;
  }
});
