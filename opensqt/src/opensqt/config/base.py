"""The config models' base: strict pydantic models whose decimals go through the one parser."""

from __future__ import annotations

import re
import types
import typing
from decimal import Decimal
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    field_validator,
)

from cqvx.errors import ParseError
from cqvx.num import dec, excerpt

__all__ = ["ConfigError"]

# A YAML or string integer without underscores, exponents or other spellings pydantic would accept.
_PLAIN_INT = re.compile(r"[-+]?[0-9]+")


class ConfigError(ValueError):
    """A configuration problem; the message names the key path (and the variable, for expansion)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_decimals(cls, value: Any, info: ValidationInfo) -> Any:
        """Every Decimal field goes through the one parser, :func:`cqvx.num.dec` (ASCII, no "_",
        bounded exponent); pydantic's own Decimal parsing takes an Arabic-Indic "1" as 1, and " 1_000 "."""
        if info.field_name is None or value is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        if annotation is int and isinstance(value, str) and not _PLAIN_INT.fullmatch(value):
            raise ValueError(f"not a plain integer: {excerpt(value)}")  # pydantic takes "1_000"
        if not _is_decimal(annotation):
            return value
        try:
            return dec(value)
        except ParseError as exc:
            raise ValueError(exc.message.removeprefix("value: ")) from None


def _is_decimal(annotation: Any) -> bool:
    return annotation is Decimal or (
        isinstance(annotation, types.UnionType) and set(typing.get_args(annotation)) == {Decimal, type(None)}
    )


def _check_symbol(value: str) -> str:
    from cqvx.symbols import parse_symbol

    try:
        parse_symbol(value)
    except Exception as exc:  # InvalidRequest from cqvx; re-worded as a config message
        raise ValueError(f"{value!r} is not a canonical symbol (BASE-QUOTE or BASE-QUOTE-PERP)") from exc
    return value
