"""Log lines: normalising producer output and Heroku's display format.

Producers hand us whatever a dyno wrote: `str` or raw `bytes`, possibly invalid UTF-8, with
ANSI colour codes, CR progress bars or several lines at once. Everything here is pure so that
streams and drains can never be broken by a single odd message.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MAX_LINE_BYTES = 10_000
"""Logplex splits messages longer than this (UTF-8 bytes of the message part); so do we."""

SOURCES = ("app", "heroku")

_NEWLINES = re.compile(r"\r\n|\r|\n")
_PROCESS_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    """Per-app sequence number, strictly increasing; SSE event ids are these numbers."""
    ts: float
    source: str
    process: str
    message: str


def format_timestamp(ts: float) -> str:
    """`2026-11-26T05:40:33.123456+00:00`, the way Logplex writes times."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="microseconds")


def display_line(line: LogLine) -> str:
    """Heroku's display format: `<timestamp> <source>[<process>]: <message>`."""
    return f"{format_timestamp(line.ts)} {line.source}[{line.process}]: {line.message}"


def decode_message(message: str | bytes) -> str:
    """Text for any producer output: invalid UTF-8 bytes become `\\xNN` escapes."""
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message).decode("utf-8", errors="backslashreplace")
    if not isinstance(message, str):
        message = str(message)
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from surrogateescape decoding) cannot be sent anywhere:
        # turn them back into bytes, then escape those bytes.
        try:
            raw = message.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            raw = message.encode("utf-8", errors="surrogatepass")
        return raw.decode("utf-8", errors="backslashreplace")
    return message


def split_message(message: str, max_bytes: int = MAX_LINE_BYTES) -> list[str]:
    """One message -> display lines: split at newlines, then at `max_bytes` UTF-8 bytes.

    A trailing newline does not make an empty line; an empty message stays one empty line.
    Chunks are cut at character boundaries, so no multi-byte character is broken.
    """
    parts = _NEWLINES.split(message)
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    out: list[str] = []
    for part in parts:
        if len(part) * 4 <= max_bytes:  # fast path: cannot exceed the limit
            out.append(part)
            continue
        encoded = part.encode("utf-8")
        if len(encoded) <= max_bytes:
            out.append(part)
            continue
        start = 0
        while start < len(encoded):
            end = min(start + max_bytes, len(encoded))
            # Step back over UTF-8 continuation bytes (10xxxxxx) to a character start.
            while end < len(encoded) and end > start and (encoded[end] & 0xC0) == 0x80:
                end -= 1
            out.append(encoded[start:end].decode("utf-8"))
            start = end
    return out


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"log source must be 'app' or 'heroku', not {source!r}")
    return source


def check_process(process: str) -> str:
    if not _PROCESS_RE.match(process):
        raise ValueError(
            f"process name must be 1-64 characters of letters, digits, '.', '_', '-': {process!r}"
        )
    return process


def process_matches(process: str, dyno: str | None) -> bool:
    """`--dyno web.1` matches that dyno only; `--dyno web` (no dot) every web dyno."""
    if dyno is None:
        return True
    if process == dyno:
        return True
    return "." not in dyno and process.split(".", 1)[0] == dyno
