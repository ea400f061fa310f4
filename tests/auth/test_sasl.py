"""SASL exchanges, byte for byte: PLAIN (RFC 4616), LOGIN, and the shared base64 helpers."""

from __future__ import annotations

import base64

import pytest

from pillarbox.auth import sasl
from pillarbox.auth.sasl import Challenge, Credentials, SaslFailure


def test_mechanisms_offered() -> None:
    assert sasl.MECHANISMS == ("PLAIN", "LOGIN")


# -- base64 helpers (RFC 4954 §4, RFC 5034 §4, RFC 4959 §3) ------------------------------


def test_decode_plain_response_with_crlf() -> None:
    assert sasl.decode_b64_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n") == (
        b"\0tim\0tanstaaftanstaaf"
    )


def test_decode_star_is_cancel() -> None:
    assert sasl.decode_b64_response(b"*\r\n") is None


def test_decode_equals_is_empty_response() -> None:
    assert sasl.decode_b64_response(b"=") == b""


def test_decode_empty_line_is_empty_response() -> None:
    assert sasl.decode_b64_response(b"\r\n") == b""


@pytest.mark.parametrize(
    "line",
    [b"not base64!", b"=AAA", b"AAA=BBBB", b"AAA", b"dGVzdA= =", b"dGVz dA==", b"**"],
)
def test_decode_rejects_bad_base64(line: bytes) -> None:
    with pytest.raises(sasl.InvalidBase64Error):
        sasl.decode_b64_response(line)


def test_encode_challenges() -> None:
    assert sasl.encode_challenge(b"Username:") == b"VXNlcm5hbWU6"
    assert sasl.encode_challenge(b"Password:") == b"UGFzc3dvcmQ6"
    assert sasl.encode_challenge(b"") == b""


# -- PLAIN ---------------------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    exchange = sasl.start("PLAIN", b"\0tim\0tanstaaftanstaaf")
    assert exchange.step(None) == Credentials("tim", "tanstaaftanstaaf", "")


def test_plain_rfc4616_example_with_authzid_equal_authcid() -> None:
    exchange = sasl.start("plain", b"tim\0tim\0tanstaaftanstaaf")
    assert exchange.step(None) == Credentials("tim", "tanstaaftanstaaf", "tim")


def test_plain_without_initial_sends_empty_challenge() -> None:
    exchange = sasl.start("PLAIN", None)
    assert exchange.step(None) == Challenge(b"")
    response = sasl.decode_b64_response(base64.b64encode(b"\0jane@example.org\0s3cr\xc3\xa9t"))
    assert exchange.step(response) == Credentials("jane@example.org", "s3cr\u00e9t", "")


def test_plain_other_authzid_fails() -> None:
    result = sasl.start("PLAIN", b"admin\0tim\0pw").step(None)
    assert isinstance(result, SaslFailure)
    assert "authorization" in result.reason


@pytest.mark.parametrize(
    "message",
    [b"tim\0pw", b"\0tim\0pw\0extra", b"\0\0pw", b"\0tim\0", b"\0t\xffim\0pw", b""],
)
def test_plain_malformed_messages_fail(message: bytes) -> None:
    assert isinstance(sasl.start("PLAIN", message).step(None), SaslFailure)


def test_plain_overlong_field_fails() -> None:
    message = b"\0" + b"u" * (sasl.MAX_FIELD_OCTETS + 1) + b"\0pw"
    assert isinstance(sasl.start("PLAIN", message).step(None), SaslFailure)


def test_plain_cancel_after_challenge() -> None:
    exchange = sasl.start("PLAIN")
    assert exchange.step(None) == Challenge(b"")
    assert exchange.step(sasl.decode_b64_response(b"*")) == sasl.CANCELLED


def test_step_after_finish_fails() -> None:
    exchange = sasl.start("PLAIN", b"\0tim\0pw")
    assert isinstance(exchange.step(None), Credentials)
    assert isinstance(exchange.step(b"\0tim\0pw"), SaslFailure)


# -- LOGIN ---------------------------------------------------------------------------------


def test_login_full_exchange_on_the_wire() -> None:
    exchange = sasl.start("LOGIN")
    first = exchange.step(None)
    assert first == Challenge(b"Username:")
    assert isinstance(first, Challenge)
    assert b"334 " + sasl.encode_challenge(first.data) == b"334 VXNlcm5hbWU6"
    second = exchange.step(sasl.decode_b64_response(b"amFuZUBleGFtcGxlLm9yZw==\r\n"))
    assert second == Challenge(b"Password:")
    third = exchange.step(sasl.decode_b64_response(b"c2VjcmV0\r\n"))
    assert third == Credentials("jane@example.org", "secret", "")


def test_login_initial_response_is_the_username() -> None:
    exchange = sasl.start("LOGIN", b"jane")
    assert exchange.step(None) == Challenge(b"Password:")
    assert exchange.step(b"pw") == Credentials("jane", "pw")


def test_login_cancel_at_password() -> None:
    exchange = sasl.start("LOGIN")
    exchange.step(None)
    exchange.step(b"jane")
    assert exchange.step(None) == sasl.CANCELLED
    assert isinstance(exchange.step(b"pw"), SaslFailure)


@pytest.mark.parametrize(("user", "password"), [(b"", b"pw"), (b"jane", b""), (b"\xff", b"pw")])
def test_login_bad_fields_fail(user: bytes, password: bytes) -> None:
    exchange = sasl.start("LOGIN")
    exchange.step(None)
    result = exchange.step(user)
    if isinstance(result, Challenge):
        result = exchange.step(password)
    assert isinstance(result, SaslFailure)


def test_unknown_mechanism() -> None:
    with pytest.raises(sasl.UnsupportedMechanismError):
        sasl.start("CRAM-MD5")


def test_credentials_repr_hides_password() -> None:
    assert "hunter2" not in repr(Credentials("tim", "hunter2"))
