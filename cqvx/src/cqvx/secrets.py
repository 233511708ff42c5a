"""Credentials as values that cannot leak by accident.

A :class:`Secret` is deliberately *not* a ``str`` subclass: a ``str`` flows into f-strings, ``%``
formatting, ``json.dumps``, ``"".join`` and log processors without anyone asking, and every one of
those would print the credential.  The only way to the plaintext is :meth:`Secret.reveal`, so a leak
needs a visible call at the leaking site.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from cqvx.errors import AuthenticationError

__all__ = ["MissingSecret", "Secret", "load_secret", "secret_from_env", "secret_from_file"]

_MASK = "Secret('***')"


class MissingSecret(AuthenticationError):
    """A required credential is not configured; the message names the variable or file, never a value."""


class Secret:
    """An opaque credential: redacted in ``repr``/``str``/``format``, refuses to pickle."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The plaintext.  Call it only where the value is consumed (a signer, a handshake)."""
        return self._value

    def reveal_bytes(self) -> bytes:
        return self._value.encode("utf-8")

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant time, so a comparison against a guessed value leaks nothing through timing.
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        # Equal secrets must hash equal; a constant keeps the value out of hash-based side channels.
        return hash(Secret)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        # Pickling would write the plaintext into a file, a queue or a process boundary.
        raise TypeError("Secret cannot be pickled; pass it by reference or reload it from its source")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    # pydantic v2 integration (only called by pydantic, so cqvx does not depend on it): a config field
    # typed ``Secret`` accepts a str, and ``model_dump``/``model_dump_json`` show it redacted.
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            cls._from_config,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _v: "***"),
        )

    @classmethod
    def _from_config(cls, value: Any) -> Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return cls(value)
        raise TypeError("a secret must be a string")


def secret_from_env(
    name: str, *, environ: Mapping[str, str] | None = None, allow_empty: bool = False
) -> Secret:
    """Read a credential from an environment variable; raise :class:`MissingSecret` naming it if unset."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        raise MissingSecret(f"environment variable {name} is not set")
    if not value and not allow_empty:
        raise MissingSecret(f"environment variable {name} is empty")
    return Secret(value)


def secret_from_file(path: str | os.PathLike[str], *, allow_empty: bool = False) -> Secret:
    """Read a credential from a file (Docker/Kubernetes secret mounts); one trailing newline is dropped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingSecret(f"secret file {p} does not exist") from None
    except OSError as exc:
        raise MissingSecret(f"secret file {p} cannot be read ({type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise MissingSecret(f"secret file {p} is not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    if not text and not allow_empty:
        raise MissingSecret(f"secret file {p} is empty")
    return Secret(text)


def load_secret(name: str, *, environ: Mapping[str, str] | None = None) -> Secret:
    """``NAME`` from the environment, or else the file named by ``NAME_FILE`` (the Docker convention)."""
    env = os.environ if environ is None else environ
    if env.get(name):
        return Secret(env[name])
    file_var = f"{name}_FILE"
    if env.get(file_var):
        return secret_from_file(env[file_var])
    raise MissingSecret(f"neither environment variable {name} nor {file_var} is set")
