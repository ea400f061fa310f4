"""The structured log: one line per event, written in order by the background thread."""

from __future__ import annotations

import io
import re

from pillarbox import log

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (\w+) (.*)$")


def test_fields_are_quoted_only_when_needed() -> None:
    text = log.format_fields("smtp.accept", {"id": "s1", "sender": "a b", "none": None, "q": 'x"y'})
    assert text == 'smtp.accept id=s1 sender="a b" q="x\\"y"'


def test_writer_keeps_order_and_flushes_on_stop() -> None:
    out = io.StringIO()
    writer = log._Writer(out)
    writer.start()
    for n in range(2000):
        writer.records.put((1_700_000_000.25, log.INFO, "event", {"n": n}, None))
    writer.records.put((1_700_000_000.5, log.ERROR, "boom", {}, "Traceback\n  line\n"))
    writer.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2003
    first = LINE.match(lines[0])
    assert first is not None
    assert first.groups() == ("info", "event n=0")
    assert lines[0].startswith("2023-11-14T22:13:20.250000Z")
    assert [line.rpartition("=")[2] for line in lines[:2000]] == [str(n) for n in range(2000)]
    assert lines[2000].endswith("error boom")
    assert lines[2001:] == ["Traceback", "  line"]


def test_exception_carries_the_traceback(capsys: object) -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("connection.error", peer="127.0.0.1")  # before setup(): direct to stderr
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "error connection.error peer=127.0.0.1" in err
    assert "ValueError: broken" in err
