"""Settings of the Fordefi adapter (venues.md §4 and §11; https://docs.fordefi.com/reference).

Credentials: the API User's access token (a long-lived JWT from the console) and the API User's P-256
private key in PEM, whose public key is registered to that API User (``x-signature`` key).  Both are
:class:`~cqvx.secrets.Secret`, never logged.

Polling schedule of :meth:`FordefiClient.await_terminal`: the ``n``-th wait (1-based) is drawn from
``[cap(n) / 2, cap(n)]`` where ``cap(n) = min(poll_max_s, poll_initial_s * poll_multiplier ** (n - 1))``
is :meth:`cqvx.backoff.Backoff.cap` of the one backoff (half fixed, half full jitter).  With the
defaults the first poll comes 1-2 s after the first read, then 1.5-3 s, 2.25-4.5 s, ... up to 15-30 s:
never more than one request a second per awaited transaction, well inside Fordefi's 300 requests per
60 s (``x-ratelimit-limit: 300, 300;w=60``, venues.md §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cqvx.backoff import Backoff
from cqvx.secrets import Secret

__all__ = ["FordefiConfig"]


@dataclass(frozen=True, slots=True)
class FordefiConfig:
    # The only server in the OpenAPI document; paths start with /api/v1 (venues.md §4.1).
    rest_url: str = "https://api.fordefi.com"
    access_token: Secret | None = field(default=None, repr=False)
    signing_key: Secret | None = field(default=None, repr=False)

    # 300 requests per 60 s per user (recorded x-ratelimit-limit headers); stay under it.
    rps: float = 4.0
    timeout_s: float = 10.0
    retries: int = 3
    retry_base_delay_s: float = 0.25

    poll_initial_s: float = 2.0
    poll_max_s: float = 30.0
    poll_multiplier: float = 1.5

    # Page size of list calls (the API allows at most 100).
    page_size: int = 100

    def __post_init__(self) -> None:
        if self.rps <= 0 or self.timeout_s <= 0:
            raise ValueError("rps and timeout_s must be positive")
        if not 1 <= self.page_size <= 100:
            raise ValueError("page_size must be within 1..100")
        if self.poll_initial_s <= 0 or self.poll_max_s < self.poll_initial_s:
            raise ValueError("poll_initial_s must be > 0 and <= poll_max_s")

    @property
    def has_credentials(self) -> bool:
        return self.access_token is not None and self.signing_key is not None

    @property
    def poll_schedule(self) -> Backoff:
        return Backoff(self.poll_initial_s, self.poll_max_s, self.poll_multiplier)
