"""A static bearer token (Fordefi API users, and any venue with a long-lived access token)."""

from __future__ import annotations

from cqvx.secrets import Secret

__all__ = ["BearerSigner"]


class BearerSigner:
    __slots__ = ("_token",)

    def __init__(self, token: str | Secret) -> None:
        self._token = token if isinstance(token, Secret) else Secret(token)

    def __repr__(self) -> str:
        return "BearerSigner(token=***)"

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}"}
