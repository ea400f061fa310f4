"""Property tests: the SASL decoders never crash on arbitrary client bytes."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.auth import sasl


@given(st.binary(max_size=200))
def test_decode_only_raises_invalid_base64(line: bytes) -> None:
    try:
        decoded = sasl.decode_b64_response(line)
    except sasl.InvalidBase64Error:
        return
    data = line.rstrip(b"\r\n")
    if decoded is None:
        assert data == b"*"
    elif data not in (b"", b"="):
        assert base64.b64decode(data) == decoded


@given(st.binary(max_size=200))
def test_encode_then_decode_round_trips(data: bytes) -> None:
    assert sasl.decode_b64_response(sasl.encode_challenge(data) + b"\r\n") == data


@given(st.binary(max_size=300))
def test_plain_never_crashes_and_credentials_are_clean(message: bytes) -> None:
    result = sasl.start("PLAIN", message).step(None)
    if isinstance(result, sasl.Credentials):
        assert result.authcid and result.password
        assert "\0" not in result.authcid + result.password + result.authzid


@given(st.text(max_size=50).filter(lambda s: "\0" not in s and s), st.text(max_size=50))
def test_plain_round_trip_through_base64(user: str, password: str) -> None:
    wire = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    result = sasl.start("PLAIN", sasl.decode_b64_response(wire)).step(None)
    if password and "\0" not in password:
        assert result == sasl.Credentials(user, password)
    else:
        assert isinstance(result, sasl.SaslFailure)
