from __future__ import annotations

import datetime as dt

import pytest

from spruce.logs.framing import (
    FrameError,
    OctetFrameParser,
    http_batch,
    l10_frame,
    line_frame,
    octet_frame,
    parse_syslog_message,
    sse_event,
    syslog_message,
)
from spruce.logs.lines import LogLine

TS = dt.datetime(2026, 11, 26, 5, 40, 33, 123456, tzinfo=dt.UTC).timestamp()
TOKEN = "d.01234567-89ab-cdef-0123-456789abcdef"


def test_syslog_message_is_logplex_rfc5424() -> None:
    msg = syslog_message(TS, TOKEN, "app", "web.1", "hello")
    assert msg == (
        b"<134>1 2026-11-26T05:40:33.123456+00:00 d.01234567-89ab-cdef-0123-456789abcdef"
        b" app web.1 - - hello\n"
    )


def test_octet_counting_counts_bytes_not_characters() -> None:
    line = LogLine(1, TS, "app", "web.1", "caf\u00e9")
    frame = line_frame(line, TOKEN)
    length, _, rest = frame.partition(b" ")
    assert int(length) == len(rest)
    assert rest.endswith("caf\u00e9\n".encode())
    assert octet_frame(b"abc") == b"3 abc"


def test_frame_parser_handles_split_and_joined_input() -> None:
    frames = [line_frame(LogLine(i, TS, "heroku", "router", f"n={i}"), TOKEN) for i in range(5)]
    stream = b"".join(frames)
    parser = OctetFrameParser()
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += parser.feed(stream[i : i + 7])
    assert len(got) == 5
    parsed = [parse_syslog_message(m) for m in got]
    assert [p.message for p in parsed] == [f"n={i}" for i in range(5)]
    assert {p.hostname for p in parsed} == {TOKEN}
    assert {(p.app_name, p.procid, p.pri) for p in parsed} == {("heroku", "router", 134)}


def test_frame_parser_rejects_garbage() -> None:
    with pytest.raises(FrameError):
        OctetFrameParser().feed(b"abc def")
    with pytest.raises(FrameError):
        OctetFrameParser().feed(b"1234567890123 x")


def test_l10_frame() -> None:
    frame = l10_frame(TS, TOKEN, 42, TS - 60)
    msg = parse_syslog_message(frame.partition(b" ")[2])
    assert msg.pri == 172
    assert (msg.app_name, msg.procid) == ("heroku", "logplex")
    assert msg.message == (
        "Error L10 (output buffer overflow): 42 messages dropped since "
        "2026-11-26T05:39:33.123456+00:00."
    )


def test_http_batch_headers_and_body() -> None:
    frames = [line_frame(LogLine(i, TS, "app", "web.1", f"line {i}"), TOKEN) for i in range(3)]
    batch = http_batch(frames, TOKEN)
    assert batch.body == b"".join(frames)
    assert batch.headers["Content-Type"] == "application/logplex-1"
    assert batch.headers["Logplex-Msg-Count"] == "3"
    assert batch.headers["Logplex-Drain-Token"] == TOKEN
    assert batch.headers["User-Agent"].startswith("Logplex/")
    assert len(batch.headers["Logplex-Frame-Id"]) == 32
    assert (
        http_batch(frames, TOKEN).headers["Logplex-Frame-Id"] == batch.headers["Logplex-Frame-Id"]
    )
    assert (
        http_batch(frames[:2], TOKEN).headers["Logplex-Frame-Id"]
        != batch.headers["Logplex-Frame-Id"]
    )
    assert len(OctetFrameParser().feed(batch.body)) == 3


def test_sse_event_encoding() -> None:
    assert sse_event("2026 app[web.1]: hi", 7) == b"id: 7\ndata: 2026 app[web.1]: hi\n\n"
    assert sse_event("a\rb\nc") == b"data: a\ndata: b\ndata: c\n\n"
    assert sse_event("") == b"data: \n\n"
