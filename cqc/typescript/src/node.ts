// gRPC (HTTP/2) transport for Node, with the connector's bearer-token authentication.
//
//   import { createVenueGatewayClient } from "@opensqt/cqc";
//   import { createCqcGrpcTransport } from "@opensqt/cqc/node";
//   const gw = createVenueGatewayClient(createCqcGrpcTransport({ baseUrl: "http://127.0.0.1:50051" }));
//
// The token is sent as `authorization: Bearer <token>` on every call (the connector checks it in
// constant time; health probes need none). Over a non-loopback address the connector requires TLS as
// well, so use an `https://` baseUrl there: the token must never cross a network in clear text.

import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, type GrpcTransportOptions } from "@connectrpc/connect-node";

export type { GrpcTransportOptions } from "@connectrpc/connect-node";

export interface CqcGrpcTransportOptions extends GrpcTransportOptions {
  /** Bearer token of the connector (`token_env` / `token_file` in its config); omit when it has none. */
  token?: string;
}

/** An interceptor adding `authorization: Bearer <token>` to every request. */
export function bearerToken(token: string): Interceptor {
  if (!token) {
    throw new Error("the bearer token is empty");
  }
  const value = `Bearer ${token}`;
  return (next) => (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}

/** A gRPC transport (HTTP/2; `http://` for plaintext loopback, `https://` for TLS). */
export function createCqcGrpcTransport(options: CqcGrpcTransportOptions): Transport {
  const { token, interceptors = [], ...rest } = options;
  const auth = token === undefined ? [] : [bearerToken(token)];
  return createGrpcTransport({ ...rest, interceptors: [...auth, ...interceptors] });
}
