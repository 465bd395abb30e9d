from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spruce.logs.lines import (
    LogLine,
    decode_message,
    display_line,
    format_timestamp,
    process_matches,
    split_message,
)

TS = dt.datetime(2026, 11, 26, 5, 40, 33, 123456, tzinfo=dt.UTC).timestamp()


def test_timestamp_format_is_logplex_style() -> None:
    assert format_timestamp(TS) == "2026-11-26T05:40:33.123456+00:00"
    assert format_timestamp(float(int(TS))) == "2026-11-26T05:40:33.000000+00:00"


def test_display_line_matches_heroku() -> None:
    line = LogLine(1, TS, "app", "web.1", "Listening on 5000")
    assert display_line(line) == "2026-11-26T05:40:33.123456+00:00 app[web.1]: Listening on 5000"
    router = LogLine(2, TS, "heroku", "router", "at=info method=GET")
    assert display_line(router).endswith(" heroku[router]: at=info method=GET")


def test_decode_bytes_escapes_invalid_utf8() -> None:
    assert decode_message(b"ok \xff\xfe end") == "ok \\xff\\xfe end"
    assert decode_message("caf\u00e9".encode()) == "caf\u00e9"
    assert decode_message("\x1b[32mgreen\x1b[0m") == "\x1b[32mgreen\x1b[0m"  # ANSI kept


def test_decode_str_with_lone_surrogates_is_made_encodable() -> None:
    text = b"bad \xff".decode("utf-8", errors="surrogateescape")
    out = decode_message(text)
    assert out == "bad \\xff"
    out.encode("utf-8")
    decode_message("x\ud800y").encode("utf-8")


def test_split_on_newlines() -> None:
    assert split_message("a\nb\r\nc\rd\n") == ["a", "b", "c", "d"]
    assert split_message("") == [""]
    assert split_message("one") == ["one"]
    assert split_message("a\n\nb") == ["a", "", "b"]


def test_split_long_line_at_limit_without_losing_bytes() -> None:
    msg = "x" * 25_000
    parts = split_message(msg, 10_000)
    assert [len(p) for p in parts] == [10_000, 10_000, 5_000]
    assert "".join(parts) == msg


def test_split_never_breaks_multibyte_characters() -> None:
    msg = "\u20ac" * 5000  # 3 bytes each
    parts = split_message(msg, 1000)
    assert all(len(p.encode()) <= 1000 for p in parts)
    assert "".join(parts) == msg


@given(st.text(), st.integers(min_value=16, max_value=200))
def test_split_roundtrip_property(text: str, limit: int) -> None:
    text = text.replace("\r", "").replace("\n", "")
    parts = split_message(text, limit)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-8", "surrogatepass")) <= limit for p in parts)


@pytest.mark.parametrize(
    ("process", "dyno", "expected"),
    [
        ("web.1", None, True),
        ("web.1", "web.1", True),
        ("web.2", "web.1", False),
        ("web.2", "web", True),
        ("worker.1", "web", False),
        ("router", "router", True),
        ("web.1", "web.", False),
        ("webby.1", "web", False),
    ],
)
def test_dyno_filter(process: str, dyno: str | None, expected: bool) -> None:
    assert process_matches(process, dyno) is expected
