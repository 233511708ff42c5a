// Cross-language test vectors: bytes encoded by the Python code decode here to the same values, and
// bytes encoded here (committed in cqc/tests/vectors/node_encoded.json) are checked by the Python tests.
// Regenerate after a contract change: CQC_UPDATE_VECTORS=1 make ts-test (after the Python step).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import {
  create,
  createRegistry,
  equals,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescFile,
  type DescMessage,
  type JsonValue,
  type Registry,
} from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";

import {
  OrderRefSchema,
  OrderSchema,
  OrderSide,
  OrderStatus,
  OrderType,
  TimeInForce,
} from "../src/gen/cqc/venues/v1/order_pb.js";

interface Vector {
  type: string;
  binary: string;
  json: JsonValue;
  variant?: number;
  name?: string;
}

const vectorsDir = new URL("../../../tests/vectors/", import.meta.url);
const pythonFile = new URL("python_encoded.json", vectorsDir);
const nodeFile = new URL("node_encoded.json", vectorsDir);
const update = process.env.CQC_UPDATE_VECTORS === "1";

function load(file: URL): Vector[] {
  return (JSON.parse(readFileSync(file, "utf8")) as { vectors: Vector[] }).vectors;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

// Every generated file, found on disk so that a new proto needs no edit here.
async function loadRegistry(): Promise<Registry> {
  const genDir = fileURLToPath(new URL("../src/gen/", import.meta.url));
  const files: DescFile[] = [];
  const modules = readdirSync(genDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith("_pb.js"))
    .sort();
  for (const rel of modules) {
    const mod = (await import(pathToFileURL(genDir + rel).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "file") {
        files.push(value as DescFile);
      }
    }
  }
  assert.ok(files.length >= 30, `expected every cqc file, found ${files.length}`);
  return createRegistry(...files);
}

function schemaOf(registry: Registry, typeName: string): DescMessage {
  const schema = registry.getMessage(typeName);
  assert.ok(schema, `unknown message type ${typeName}`);
  return schema;
}

// Messages built field by field with the generated TypeScript API, not from Python's JSON.
function handBuilt(): Vector[] {
  const order = create(OrderSchema, {
    clientOrderId: "osq-grid-btcusd-7-b-3",
    venue: "sim",
    symbol: "BTC-USD",
    side: OrderSide.BUY,
    orderType: OrderType.LIMIT,
    timeInForce: TimeInForce.GTC,
    quantity: "0.00012300",
    price: "64250.12",
    postOnly: true,
    status: OrderStatus.PARTIALLY_FILLED,
    createdAt: create(TimestampSchema, { seconds: 1_718_000_000n, nanos: 5_000_000 }),
    venueExtras: { stp: "cancel_newest", "näme": "ü" },
  });
  const ref = create(OrderRefSchema, {
    symbol: "BTC-USD",
    id: { case: "clientOrderId", value: "osq-grid-btcusd-7-b-3" },
  });
  return [
    { name: "order", type: OrderSchema.typeName, binary: b64(toBinary(OrderSchema, order)), json: toJson(OrderSchema, order) },
    { name: "order_ref", type: OrderRefSchema.typeName, binary: b64(toBinary(OrderRefSchema, ref)), json: toJson(OrderRefSchema, ref) },
  ];
}

test("Python-encoded vectors decode to the expected JSON", async () => {
  const registry = await loadRegistry();
  const vectors = load(pythonFile);
  assert.ok(vectors.length > 200, "python vectors look truncated");
  for (const vec of vectors) {
    const schema = schemaOf(registry, vec.type);
    const msg = fromBinary(schema, unb64(vec.binary));
    assert.deepStrictEqual(toJson(schema, msg), vec.json, `${vec.type}#${vec.variant}`);
    // The JSON form parses to the same message as the binary form.
    assert.ok(equals(schema, msg, fromJson(schema, vec.json, { registry })), `${vec.type}#${vec.variant} JSON`);
  }
});

test("Node-encoded vectors are current", async () => {
  const registry = await loadRegistry();
  const fresh: Vector[] = load(pythonFile).map((vec) => {
    const schema = schemaOf(registry, vec.type);
    const msg = fromJson(schema, vec.json, { registry });
    return { type: vec.type, variant: vec.variant, binary: b64(toBinary(schema, msg)), json: toJson(schema, msg) };
  });
  fresh.push(...handBuilt());
  if (update) {
    const doc = { producer: "cqc/typescript/test/vectors.test.ts", vectors: fresh };
    writeFileSync(nodeFile, JSON.stringify(doc, null, 1) + "\n", "utf8");
  }
  assert.deepStrictEqual(load(nodeFile), fresh, "stale node vectors: run CQC_UPDATE_VECTORS=1 make ts-test");
});

test("a hand-built order survives binary and JSON", () => {
  const [order] = handBuilt();
  const decoded = fromBinary(OrderSchema, unb64(order.binary));
  assert.equal(decoded.price, "64250.12");
  assert.equal(decoded.quantity, "0.00012300");
  assert.equal(decoded.side, OrderSide.BUY);
  assert.equal(decoded.createdAt?.seconds, 1_718_000_000n);
  assert.deepStrictEqual(toJson(OrderSchema, fromJson(OrderSchema, order.json)), order.json);
});
