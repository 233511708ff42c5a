"""Bearer-token authentication and the bind-address policy of the connector.

The connector holds venue credentials, so anyone who can reach its port can trade.  It therefore
binds only loopback addresses unless it has BOTH a bearer token (so callers are authenticated) and
TLS (so the token and the orders cannot be read or replayed on the wire).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from cqvx.errors import AuthenticationError
from cqvx.secrets import Secret, secret_from_env, secret_from_file
from opensqt.connector.errors import status_details

__all__ = [
    "AUTH_METADATA_KEY",
    "DEFAULT_TOKEN_ENV",
    "BearerTokenInterceptor",
    "ConnectorConfigError",
    "check_bind",
    "is_loopback",
    "load_token",
]

AUTH_METADATA_KEY = "authorization"
# Where both ends look for the bearer token when nothing else names it.
DEFAULT_TOKEN_ENV = "OPENSQT_CONNECTOR_TOKEN"
# Health probes (load balancers, grpc_health_probe) carry no token.
_EXEMPT = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class ConnectorConfigError(ValueError):
    """The connector's configuration is unsafe or incomplete; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a DNS name may resolve anywhere


def check_bind(host: str, *, tls: bool, token: bool) -> None:
    """Refuse a non-loopback bind unless both TLS and a bearer token are configured."""
    if is_loopback(host) or (tls and token):
        return
    missing = " and ".join(
        name
        for name, present in (("TLS (tls_cert + tls_key)", tls), ("a bearer token", token))
        if not present
    )
    raise ConnectorConfigError(
        f"refusing to bind {host!r}: a non-loopback address exposes the venue credentials, so it needs "
        f"both TLS and a bearer token; missing {missing} (or bind 127.0.0.1)"
    )


def load_token(
    *,
    env: str | None = None,
    file: str | Path | None = None,
    configured: Secret | None = None,
    environ: Mapping[str, str] | None = None,
) -> Secret | None:
    """The one place the connector's bearer token is read (server and client side alike).

    First match wins: ``file`` (preferred: secret mounts), ``env`` (a variable that must be set),
    ``configured`` (the YAML ``connector.token``, already read), then :data:`DEFAULT_TOKEN_ENV` when
    it is set; else None (no token).
    """
    if file is not None:
        return secret_from_file(file)
    if env is not None:
        return secret_from_env(env, environ=environ)
    if configured is not None:
        return configured
    source = os.environ if environ is None else environ
    if source.get(DEFAULT_TOKEN_ENV):
        return secret_from_env(DEFAULT_TOKEN_ENV, environ=source)
    return None


def _deny_handler(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    err = AuthenticationError("missing or invalid bearer token")
    md = status_details(err)

    async def deny_unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, err.message, md)

    async def deny_stream(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, err.message, md)
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            deny_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        deny_unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class BearerTokenInterceptor(aio.ServerInterceptor):
    """Accepts a call only with metadata ``authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, token: Secret, on_reject: Callable[[str], None] | None = None) -> None:
        if not token:
            raise ConnectorConfigError("the bearer token is empty")
        self._expected = b"Bearer " + token.reveal_bytes()
        self._on_reject = on_reject

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method in _EXEMPT or handler is None:
            return handler
        presented = b""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == AUTH_METADATA_KEY:
                presented = value.encode("utf-8") if isinstance(value, str) else bytes(value)
                break
        if hmac.compare_digest(presented, self._expected):
            return handler
        if self._on_reject is not None:
            self._on_reject(method.rsplit("/", 1)[-1])
        return _deny_handler(handler)
