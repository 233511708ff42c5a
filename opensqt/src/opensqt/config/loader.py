"""Reading config text: YAML with decimals from source text, ``${VAR}`` expansion, errors by key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from cqvx.errors import ParseError
from cqvx.num import dec, excerpt
from opensqt.config.base import _PLAIN_INT, ConfigError

__all__ = ["expand_env", "load_model", "parse_model", "read_text", "read_yaml", "validate_model"]


M = TypeVar("M", bound=BaseModel)


# ----------------------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, env: Mapping[str, str], where: str = "") -> str:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in one string; ``$${`` is a literal ``${``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        at = f" (at {where})" if where else ""
        raise ConfigError(f"environment variable {name} is not set{at}")

    return _VAR.sub(repl, value)


def _expand_tree(node: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(node, str):
        return expand_env(node, env, path)
    if isinstance(node, dict):
        return {k: _expand_tree(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_tree(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


_MAX_DEPTH = 64


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads floats as Decimal from the source text (0.1 stays exactly 0.1).

    Aliases (``*name``) are refused: a config has no use for them, and nested aliases expand
    exponentially (the "billion laughs" document), which would exhaust memory before any check ran.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a config file", event.start_mark
            )
        if self._depth >= _MAX_DEPTH:  # before Python's recursion limit turns it into a traceback
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {_MAX_DEPTH} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (PyYAML's own text spans several lines and quotes the input)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{exc.problem or exc.context or 'syntax error'}{where}"
    return excerpt(str(exc).replace("\n", " "))


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # YAML 1.1 floats include "1_000.5", ".inf" and "1:30.5" (base 60); only what cqvx.num.dec accepts
    # becomes a number, the rest stays text for the field validators to refuse with the key path.
    text = str(loader.construct_scalar(node))
    try:
        return dec(text)
    except ParseError:
        return text


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # YAML 1.1 ints include "1_000", "0x1F", "0o17", "010" (octal 8) and "1:30" (base 60): plain ASCII
    # digits only, read in base 10; anything else stays text and is refused by the field's validator.
    text = str(loader.construct_scalar(node))
    # Beyond 40 digits it stays text too (Python refuses to convert > 4300 digits with a ValueError).
    return int(text, 10) if len(text) <= 40 and _PLAIN_INT.fullmatch(text) else text


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_DecimalLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _message(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        lines.append(f"{path}: {_message(err)}" if path else _message(err))
    return "; ".join(lines)


def read_yaml(text: str, source: str = "<config>") -> dict[str, Any]:
    """The raw tree of a YAML document (floats as Decimal); the top level must be a mapping."""
    try:
        raw = yaml.load(text, Loader=_DecimalLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return raw


def validate_model(
    raw: Mapping[str, Any], model: type[M], env: Mapping[str, str] | None = None, *, expand: bool = True
) -> M:
    """``${VAR}``-expand a raw tree and validate it as ``model``; raises :class:`ConfigError`.

    ``env`` is also the validation context's ``environ``, so secret fields written as ``{env: NAME}``
    (:data:`cqvx.venues.sections.SecretField`) read the same environment as the expansion.
    """
    environ = os.environ if env is None else env
    data = _expand_tree(dict(raw), environ, "") if expand else dict(raw)
    try:
        return model.model_validate(data, context={"environ": environ})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def parse_model(
    text: str, model: type[M], env: Mapping[str, str] | None = None, source: str = "<config>"
) -> M:
    """The one YAML loader: parse, expand ``${VAR}``, validate as ``model`` (errors name key paths)."""
    return validate_model(read_yaml(text, source), model, env)


def load_model(path: str | Path, model: type[M], env: Mapping[str, str] | None = None) -> M:
    return parse_model(read_text(path), model, env, str(path))


def read_text(path: str | Path) -> str:
    p = Path(path)
    try:
        return p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read config {p}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
