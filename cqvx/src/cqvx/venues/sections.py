"""Building blocks of a venue's typed config section (see :mod:`cqvx.venues.registry`).

A section is a pydantic v2 model (``extra="forbid"``, frozen) that a venue registers next to its
factory.  Credentials are :data:`SecretField` values, given in the config as one of::

    api_key: {env: CB_KEY}            # read from an environment variable
    api_key: {file: /run/secrets/cb}  # read from a file (Docker/Kubernetes secret mounts)
    api_key: ${CB_KEY}                # a string (what a config loader's ${VAR} expansion produces)

and read once, at validation time, through :mod:`cqvx.secrets` (so a missing variable is an error that
names it, never a value).  :data:`TextField` is the same for non-secret strings that usually live in
the environment too (a key *name*).  Validation looks variables up in ``context["environ"]`` when the
caller passes one (tests), else in ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo

from cqvx.secrets import MissingSecret, Secret, secret_from_env, secret_from_file

__all__ = ["SecretField", "Section", "TextField", "resolve_secret"]


class Section(BaseModel):
    """Base of every venue section: unknown keys are errors (a typo never silently does nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)


def _environ(info: ValidationInfo | None) -> Mapping[str, str]:
    context = info.context if info is not None else None
    if isinstance(context, Mapping):
        env = context.get("environ")
        if isinstance(env, Mapping):
            return env
    return os.environ


def resolve_secret(value: Any, environ: Mapping[str, str] | None = None) -> Secret:
    """A :class:`Secret` from ``{env: NAME}``, ``{file: PATH}``, a string or a Secret.

    Raises ``ValueError`` (pydantic turns it into an error at the key's path) naming the variable or
    file that is missing, never a value.
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"env"} and isinstance(value["env"], str) and value["env"]:
            try:
                return secret_from_env(value["env"], environ=environ)
            except MissingSecret as err:
                raise ValueError(err.message) from None
        if keys == {"file"} and isinstance(value["file"], str | os.PathLike) and str(value["file"]):
            try:
                return secret_from_file(value["file"])
            except MissingSecret as err:
                raise ValueError(err.message) from None
    raise ValueError("expected {env: VARIABLE} or {file: PATH} (or a string)")


def _secret(value: Any, info: ValidationInfo) -> Secret:
    return resolve_secret(value, _environ(info))


def _text(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, str):
        return value
    return resolve_secret(value, _environ(info)).reveal()


SecretField = Annotated[Secret, BeforeValidator(_secret)]
TextField = Annotated[str, BeforeValidator(_text)]
