"""Header values: RFC 2047 words, RFC 2231 parameters, Content-* defaults."""

from __future__ import annotations

from pillarbox.mime.headers import (
    decode_words,
    param_value,
    parse_content_type,
    parse_disposition,
    split_fields,
    unfold,
)


def test_encoded_words_join_and_drop_whitespace_between() -> None:
    raw = b"=?UTF-8?Q?R=C3=A9union?= =?UTF-8?B?IOKAlA==?=\r\n =?iso-8859-1?q?_d=E9j=E0?= ok"
    assert decode_words(raw) == "Réunion — déjà ok"


def test_word_split_inside_a_multibyte_character_survives() -> None:
    # "é" is C3 A9; each half in its own encoded-word.
    assert decode_words(b"=?utf-8?Q?caf=C3?= =?utf-8?Q?=A9?=") == "café"


def test_bad_words_degrade_without_error() -> None:
    assert decode_words(b"=?x-nope?Q?hi?=") == "hi"
    assert "?" not in decode_words(b"=?utf-8?B?!!!?=") or True  # must not raise
    assert decode_words(b"plain \xff text").startswith("plain ")


def test_rfc2231_continuations_and_charset() -> None:
    ctype = parse_content_type(
        b"application/pdf; name*0*=UTF-8''%C3%9Cber; name*1*=%20sicht.pdf; x=\"a;b\""
    )
    assert (ctype.maintype, ctype.subtype) == ("application", "pdf")
    assert param_value(ctype.params, "name") == "Über sicht.pdf"
    assert param_value(ctype.params, "x") == "a;b"


def test_content_type_defaults_and_case() -> None:
    assert parse_content_type(None).maintype == "text"
    assert parse_content_type(b"garbage").subtype == "plain"
    ctype = parse_content_type(b" (comment) TEXT/Html ; Charset=UTF-8")
    assert (ctype.maintype, ctype.subtype, ctype.written) == ("text", "html", ("TEXT", "Html"))


def test_disposition() -> None:
    dsp = parse_disposition(b'attachment; filename="a b.txt"; size=3')
    assert dsp is not None
    assert dsp.kind == "attachment"
    assert param_value(dsp.params, "filename") == "a b.txt"


def test_split_fields_and_unfold() -> None:
    hdr = b"Subject: a\r\n b\r\nNo colon here\r\nTo: x\r\n\r\nbody"
    fields = split_fields(hdr, 0, len(hdr))
    assert [f.name for f in fields] == [b"subject", b"", b"to"]
    assert unfold(fields[0].value) == b" a b"
    assert hdr[fields[2].start : fields[2].end] == b"To: x\r\n"
