"""Secrets never show up in repr/str/format/log output/exception text/pickles/config dumps."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cqvx.auth.hmac import COINBASE_PRIME, HmacSigner
from cqvx.errors import AuthenticationError
from cqvx.secrets import MissingSecret, Secret, load_secret, secret_from_env, secret_from_file

VALUE = "sk-live-THIS-IS-THE-PLAINTEXT-42"

secret_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=12, max_size=64
)


@settings(max_examples=100, deadline=None)
@given(value=secret_text)
def test_every_rendering_is_redacted(value: str) -> None:
    s = Secret(value)
    rendered = [
        repr(s),
        str(s),
        f"{s}",
        f"{s!r}",
        f"{s:>40}",
        "%s" % s,  # noqa: UP031 - the old formatting path must be redacted too
        "{}".format(s),  # noqa: UP032
        repr([s]),
        repr({"k": s}),
    ]
    for text in rendered:
        assert value not in text
        assert "***" in text
    assert s.reveal() == value


def test_not_a_str_and_not_serialisable() -> None:
    s = Secret(VALUE)
    assert not isinstance(s, str)
    with pytest.raises(TypeError):
        json.dumps({"k": s})
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        pickle.dumps({"nested": [s]})
    assert copy.deepcopy({"k": s})["k"] is s
    with pytest.raises(AttributeError):
        s._value = "other"


def test_equality_is_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert Secret(VALUE) != VALUE  # a Secret never equals a plain string
    assert hash(Secret("a")) == hash(Secret("b"))  # hash carries nothing about the value
    assert len({Secret(VALUE), Secret(VALUE)}) == 1


def test_logs_do_not_leak(caplog: pytest.LogCaptureFixture) -> None:
    s = Secret(VALUE)
    buf = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(buf), processors=[structlog.processors.JSONRenderer(default=repr)]
    )
    logger.info("configured", secret=s, nested={"api": [s]})
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("key is %s / %r", s, s)
    signer = HmacSigner(COINBASE_PRIME, Secret("AK"), s, passphrase=Secret("PP-secret-pass"))
    logging.getLogger("test").info("signer %r", signer)
    out = buf.getvalue() + caplog.text
    assert VALUE not in out and "PP-secret-pass" not in out
    assert "***" in out


def test_exception_text_does_not_leak() -> None:
    s = Secret(VALUE)
    try:
        raise AuthenticationError(f"bad key {s}", raw={"secret": VALUE, "api_key": VALUE})
    except AuthenticationError as exc:
        assert VALUE not in str(exc) + repr(exc) + json.dumps(exc.to_dict()) + repr(exc.raw)


def test_pydantic_config_dump_is_redacted() -> None:
    class Cfg(BaseModel):
        api_secret: Secret

    cfg = Cfg(api_secret=VALUE)  # type: ignore[arg-type]
    assert cfg.api_secret.reveal() == VALUE
    dumped = cfg.model_dump_json() + repr(cfg) + str(cfg.model_dump())
    assert VALUE not in dumped


def test_env_loader(tmp_path: Path) -> None:
    assert secret_from_env("CQVX_K", environ={"CQVX_K": VALUE}).reveal() == VALUE
    with pytest.raises(MissingSecret, match="CQVX_MISSING") as info:
        secret_from_env("CQVX_MISSING", environ={})
    assert isinstance(info.value, AuthenticationError)
    with pytest.raises(MissingSecret, match="CQVX_EMPTY is empty"):
        secret_from_env("CQVX_EMPTY", environ={"CQVX_EMPTY": ""})
    f = tmp_path / "key.txt"
    f.write_text(VALUE + "\n")
    assert load_secret("CQVX_K", environ={"CQVX_K_FILE": str(f)}).reveal() == VALUE
    assert load_secret("CQVX_K", environ={"CQVX_K": "direct"}).reveal() == "direct"
    with pytest.raises(MissingSecret, match="CQVX_K_FILE"):
        load_secret("CQVX_K", environ={})


def test_file_loader(tmp_path: Path) -> None:
    f = tmp_path / "pem"
    f.write_text("line1\nline2\n")
    assert secret_from_file(f).reveal() == "line1\nline2"
    missing = tmp_path / "nope"
    with pytest.raises(MissingSecret) as info:
        secret_from_file(missing)
    assert str(missing) in str(info.value)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(MissingSecret, match="empty"):
        secret_from_file(empty)
