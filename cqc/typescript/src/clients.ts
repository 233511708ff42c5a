// gRPC clients of the cqc services, on @connectrpc/connect v2.
//
// protoc-gen-es v2 already emits a typed descriptor for every service (`VenueGateway` in
// gen/cqc/services/v1/venue_gateway_pb.ts); connect's `createClient(descriptor, transport)` turns it into
// a client whose methods are the RPCs (`await client.getBalances({ venue: "sim" })`, streams as async
// iterables). So no second code generator: this module is the one table of services, and
// test/clients.test.ts fails when a generated service is missing from it.
//
// Transports: `createCqcGrpcTransport` in ./node.ts (gRPC over HTTP/2, Node), or any connect transport
// (e.g. @connectrpc/connect-web's gRPC-web transport behind a proxy, in a browser).
//
// This is the package entry point (`@opensqt/cqc`). Messages are imported from their generated modules
// (`@opensqt/cqc/gen/cqc/venues/v1/order_pb.js`): two proto packages may define the same name (the
// Portfolio message and the Portfolio service), so there is no flat re-export of everything.

import { createClient, type Client, type Transport } from "@connectrpc/connect";

import { AssetRegistry } from "./gen/cqc/services/v1/asset_registry_pb.js";
import { MarketData } from "./gen/cqc/services/v1/market_data_pb.js";
import { Portfolio } from "./gen/cqc/services/v1/portfolio_pb.js";
import { RiskEngine } from "./gen/cqc/services/v1/risk_engine_pb.js";
import { VenueGateway } from "./gen/cqc/services/v1/venue_gateway_pb.js";

export { Code, ConnectError, createClient } from "@connectrpc/connect";
export type { CallOptions, Client, Interceptor, Transport } from "@connectrpc/connect";
export { AssetRegistry, MarketData, Portfolio, RiskEngine, VenueGateway };

/** Every service of the contracts, by its proto name. */
export const services = { AssetRegistry, MarketData, Portfolio, RiskEngine, VenueGateway } as const;

export type AssetRegistryClient = Client<typeof AssetRegistry>;
export type MarketDataClient = Client<typeof MarketData>;
export type PortfolioClient = Client<typeof Portfolio>;
export type RiskEngineClient = Client<typeof RiskEngine>;
export type VenueGatewayClient = Client<typeof VenueGateway>;

/** A VenueGateway client (the exchange connector: `opensqt connector`). */
export function createVenueGatewayClient(transport: Transport): VenueGatewayClient {
  return createClient(VenueGateway, transport);
}

export function createAssetRegistryClient(transport: Transport): AssetRegistryClient {
  return createClient(AssetRegistry, transport);
}

export function createMarketDataClient(transport: Transport): MarketDataClient {
  return createClient(MarketData, transport);
}

export function createPortfolioClient(transport: Transport): PortfolioClient {
  return createClient(Portfolio, transport);
}

export function createRiskEngineClient(transport: Transport): RiskEngineClient {
  return createClient(RiskEngine, transport);
}
