"""Shared transport: signed/retried/rate-limited HTTP, self-healing WebSockets, limits, breakers."""

from cqvx.backoff import Backoff
from cqvx.transport.breaker import BreakerState, CircuitBreaker
from cqvx.transport.http import HttpResponse, HttpTransport, RetryPolicy
from cqvx.transport.ratelimit import RateLimiterRegistry, TokenBucket, limiters
from cqvx.transport.ws import ConnectionState, WsClient

__all__ = [
    "Backoff",
    "BreakerState",
    "CircuitBreaker",
    "ConnectionState",
    "HttpResponse",
    "HttpTransport",
    "RateLimiterRegistry",
    "RetryPolicy",
    "TokenBucket",
    "WsClient",
    "limiters",
]
