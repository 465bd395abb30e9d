"""Sans-IO wire formats: syslog frames (RFC 5424 + RFC 6587 octet counting), Logplex HTTP
drain batches (`application/logplex-1`) and Server-Sent Events.

Logplex writes each line as
`<PRI>1 <time> <drain token> <source> <process> - - <message>\\n` and prefixes it with its
length in bytes and a space; a HTTPS drain POST body is those frames concatenated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from spruce.logs.lines import LogLine, format_timestamp

# Facilities as Logplex uses them (RFC 5424 numbers): app/heroku lines are local0.info, which is
# the `<134>` that drains receive; Logplex's own L10 lines are local5.warning (`<172>`).
PRI_LINE = 16 * 8 + 6
PRI_LOGPLEX_WARNING = 21 * 8 + 4

CONTENT_TYPE = "application/logplex-1"
USER_AGENT = "Logplex/spruce"


def syslog_message(
    ts: float, token: str, source: str, process: str, message: str, pri: int = PRI_LINE
) -> bytes:
    """One RFC 5424 message the way Logplex writes it (ends with a newline)."""
    head = f"<{pri}>1 {format_timestamp(ts)} {token} {source} {process} - - "
    return (head + message + "\n").encode("utf-8", errors="backslashreplace")


def octet_frame(msg: bytes) -> bytes:
    """RFC 6587 octet counting: `<length> <msg>`."""
    return str(len(msg)).encode("ascii") + b" " + msg


def line_frame(line: LogLine, token: str) -> bytes:
    return octet_frame(syslog_message(line.ts, token, line.source, line.process, line.message))


def l10_text(dropped: int, since_ts: float) -> str:
    return (
        f"Error L10 (output buffer overflow): {dropped} messages dropped since "
        f"{format_timestamp(since_ts)}."
    )


def l10_frame(ts: float, token: str, dropped: int, since_ts: float) -> bytes:
    msg = syslog_message(
        ts, token, "heroku", "logplex", l10_text(dropped, since_ts), pri=PRI_LOGPLEX_WARNING
    )
    return octet_frame(msg)


@dataclass(frozen=True)
class HttpBatch:
    body: bytes
    headers: dict[str, str]
    count: int


def http_batch(frames: list[bytes], token: str, user_agent: str = USER_AGENT) -> HttpBatch:
    """A Logplex HTTPS drain POST: frames concatenated, with Logplex's headers.

    The frame id is a digest of the body, so a retried POST carries the same id and the
    receiver can de-duplicate.
    """
    body = b"".join(frames)
    frame_id = hashlib.md5(body, usedforsecurity=False).hexdigest().upper()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Logplex-Msg-Count": str(len(frames)),
        "Logplex-Frame-Id": frame_id,
        "Logplex-Drain-Token": token,
        "User-Agent": user_agent,
    }
    return HttpBatch(body=body, headers=headers, count=len(frames))


class FrameError(ValueError):
    """Bytes that are not an octet-counted syslog stream."""


class OctetFrameParser:
    """Incremental parser of octet-counted frames: feed bytes, get whole messages out."""

    MAX_FRAME = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            space = self._buf.find(b" ", 0, 9)
            if space == -1:
                if len(self._buf) >= 9:
                    raise FrameError("frame length prefix missing or too long")
                return out
            digits = bytes(self._buf[:space])
            if not digits.isdigit():
                raise FrameError(f"bad frame length prefix {digits[:16]!r}")
            length = int(digits)
            if length > self.MAX_FRAME:
                raise FrameError(f"frame of {length} bytes is too large")
            end = space + 1 + length
            if len(self._buf) < end:
                return out
            out.append(bytes(self._buf[space + 1 : end]))
            del self._buf[:end]


@dataclass(frozen=True)
class SyslogMessage:
    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    message: str


def parse_syslog_message(msg: bytes) -> SyslogMessage:
    """Parse a Logplex-style RFC 5424 message (no structured data) for tests and receivers."""
    text = msg.decode("utf-8", errors="replace").removesuffix("\n")
    if not text.startswith("<") or ">1 " not in text[:8]:
        raise FrameError("not an RFC 5424 message")
    pri_end = text.index(">")
    parts = text[pri_end + 3 :].split(" ", 6)
    if len(parts) < 6:
        raise FrameError("truncated RFC 5424 header")
    ts, host, app, procid, msgid, sd = parts[:6]
    return SyslogMessage(
        pri=int(text[1:pri_end]),
        timestamp=ts,
        hostname=host,
        app_name=app,
        procid=procid,
        msgid=msgid,
        message=parts[6] if len(parts) > 6 and sd == "-" else "",
    )


# --- Server-Sent Events -------------------------------------------------------------------


def sse_event(data: str, event_id: int | None = None) -> bytes:
    """One SSE event. Lines never contain CR/LF (split at emit), but stay safe if they do."""
    out = [] if event_id is None else [f"id: {event_id}\n"]
    for piece in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        out.append(f"data: {piece}\n")
    out.append("\n")
    return "".join(out).encode("utf-8", errors="backslashreplace")


def sse_events(items: Iterable[tuple[int, str]]) -> bytes:
    return b"".join(sse_event(text, seq) for seq, text in items)


def sse_comment(text: str = "") -> bytes:
    return f": {text}\n\n".encode()


def sse_retry(millis: int) -> bytes:
    return f"retry: {millis}\n\n".encode()
