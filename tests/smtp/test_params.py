"""MAIL/RCPT parameters: SIZE, BODY, RET, ENVID, SMTPUTF8, AUTH, NOTIFY, ORCPT, xtext."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.smtp import replies
from pillarbox.smtp.events import MailParams, RcptParams
from pillarbox.smtp.params import (
    ALL_EXTENSIONS,
    Extension,
    ParamError,
    decode_xtext,
    encode_xtext,
    parse_mail_params,
    parse_rcpt_params,
)
from pillarbox.smtp.replies import Reply


def mail(text: str, extensions: frozenset[Extension] = ALL_EXTENSIONS) -> MailParams:
    return parse_mail_params(text, extended=True, extensions=extensions, max_size=1000)


def mail_error(text: str, extensions: frozenset[Extension] = ALL_EXTENSIONS) -> Reply:
    with pytest.raises(ParamError) as info:
        mail(text, extensions)
    return info.value.reply


def test_no_parameters() -> None:
    assert mail("") == MailParams()


def test_all_mail_parameters() -> None:
    params = mail(" size=1000 body=binarymime ret=full envid=x+2By smtputf8 auth=<>")
    assert params == MailParams(1000, "BINARYMIME", "FULL", "x+y", True, "<>")


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (" SIZE=1001", replies.MESSAGE_TOO_BIG),
        (" SIZE=", replies.SYNTAX_ERROR),
        (" SIZE", replies.BAD_PARAMETER),
        (" SIZE=-1", replies.BAD_PARAMETER),
        (" SIZE=" + "9" * 21, replies.BAD_PARAMETER),
        (" SIZE=1 SIZE=1", replies.BAD_PARAMETER),
        (" BODY=QUOTED", replies.UNKNOWN_PARAMETER),
        (" RET=NONE", replies.BAD_PARAMETER),
        (" ENVID=" + "a" * 101, replies.BAD_PARAMETER),
        (" ENVID=a+zz", replies.BAD_PARAMETER),
        (" SMTPUTF8=YES", replies.BAD_PARAMETER),
        (" XFOO=1", replies.UNKNOWN_PARAMETER),
        ("SIZE=1", replies.SYNTAX_ERROR),
        (" =1", replies.SYNTAX_ERROR),
    ],
)
def test_bad_mail_parameters(text: str, reply: Reply) -> None:
    assert mail_error(text) == reply


def test_binarymime_needs_its_extension() -> None:
    extensions = ALL_EXTENSIONS - {Extension.BINARYMIME}
    assert mail_error(" BODY=BINARYMIME", extensions) == replies.UNKNOWN_PARAMETER
    assert mail(" BODY=8BITMIME", extensions).body == "8BITMIME"


def test_size_zero_limit_means_unlimited() -> None:
    params = parse_mail_params(
        " SIZE=99999999", extended=True, extensions=ALL_EXTENSIONS, max_size=0
    )
    assert params.size == 99999999


def test_parameters_need_ehlo() -> None:
    with pytest.raises(ParamError) as info:
        parse_mail_params(" SIZE=1", extended=False, extensions=ALL_EXTENSIONS, max_size=0)
    assert info.value.reply == replies.UNKNOWN_PARAMETER


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("", RcptParams()),
        (" NOTIFY=NEVER", RcptParams(("NEVER",))),
        (" notify=delay,failure", RcptParams(("DELAY", "FAILURE"))),
        (" ORCPT=rfc822;a+2Bb@x.test", RcptParams((), "rfc822;a+b@x.test")),
        (" ORCPT=utf-8;a@x.test NOTIFY=SUCCESS", RcptParams(("SUCCESS",), "utf-8;a@x.test")),
    ],
)
def test_rcpt_parameters(text: str, params: RcptParams) -> None:
    assert parse_rcpt_params(text, extended=True, extensions=ALL_EXTENSIONS) == params


@pytest.mark.parametrize(
    "text",
    [
        " NOTIFY=",
        " NOTIFY=NEVER,DELAY",
        " NOTIFY=SOMETIMES",
        " ORCPT=rfc822",
        " ORCPT=;a@b",
        " ORCPT=rfc822;",
        " ORCPT=rfc822;" + "a" * 500,
    ],
)
def test_bad_rcpt_parameters(text: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_rcpt_params(text, extended=True, extensions=ALL_EXTENSIONS)
    assert info.value.reply.code in (501, 555)


def test_dsn_parameters_need_dsn() -> None:
    with pytest.raises(ParamError) as info:
        parse_rcpt_params(" NOTIFY=NEVER", extended=True, extensions=frozenset())
    assert info.value.reply == replies.UNKNOWN_PARAMETER


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=50))
def test_xtext_round_trips(text: str) -> None:
    encoded = encode_xtext(text)
    assert encoded.isascii()
    assert "=" not in encoded and " " not in encoded
    assert decode_xtext(encoded) == text
