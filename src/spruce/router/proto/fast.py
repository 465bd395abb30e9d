"""Bytes-level head rewriting for the HTTP/1.1 fast lane, sans-IO.

The ordinary path parses a head into (str, str) pairs, rewrites the list and serialises it
again. For the common request and response this module instead validates the whole head with
the same grammar in a few C regex passes, finds only the headers the router acts on, and
splices the received bytes around them: ordinary headers are never decoded. Anything out of
the ordinary (a body, Upgrade, Expect, unusual Connection tokens, duplicated ids, heads over
8192 bytes...) returns None and the ordinary path decides. A hypothesis test keeps the output
byte-identical to `rewrite_*_headers` + `serialize_*_head` wherever this module answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from .http1 import MAX_HEADERS, MAX_LINE

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"{1,127}) ([\x21-\x7e\x80-\xff]+) HTTP/1\.1\r\n")
# a header block and the blank line ending it; names within the 1000-byte limit
_REQUEST_BLOCK = re.compile(rb"(?:" + _TCHAR + rb"{1,1000}:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*\r\n")
_RESPONSE_BLOCK = re.compile(rb"(?:" + _TCHAR + rb"+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*\r\n")
_STATUS_LINE = re.compile(
    rb"HTTP/1\.([01]) ([1-9][0-9][0-9]) "
    rb"[\x21-\x7e\x80-\xff](?:[\x09\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?\r\n"
)
_HOST = re.compile(rb"[A-Za-z0-9.\-_:\[\]]+")
_REQUEST_ID = re.compile(rb"[A-Za-z0-9+/=\-]{20,200}")


def _special(names: tuple[str, ...]) -> re.Pattern[bytes]:
    """Finds the named header lines in a lower-cased block that starts with the CRLF ending
    the line before it (the literal CRLF prefix lets the regex engine skip ahead quickly).
    Group 2 is the raw value, up to the line's CR."""
    alternatives = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(rb"\r\n(" + alternatives.encode() + rb"):([^\r]*)")


_HOP = ("keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization")
# request headers the router acts on; each maps to what the fast lane does with it
_DROP, _HOSTH, _CONN, _CL, _DECLINE, _XFF, _RID, _VIA = range(8)
_REQUEST_ACTIONS: dict[bytes, int] = {
    b"host": _HOSTH,
    b"connection": _CONN,
    b"content-length": _CL,
    b"transfer-encoding": _DECLINE,
    b"upgrade": _DECLINE,
    b"expect": _DECLINE,
    b"te": _DECLINE,
    b"trailer": _DECLINE,
    # a header named after a Connection token the fast lane accepts: the ordinary path
    # strips it when Connection lists it
    b"close": _DECLINE,
    b"x-forwarded-for": _XFF,
    b"x-request-id": _RID,
    b"via": _VIA,
    **{
        n.encode(): _DROP
        for n in (
            *_HOP,
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-host",
            "x-forwarded-by",
            "x-request-start",
        )
    },
}
_REQUEST_SPECIAL = _special(tuple(k.decode() for k in _REQUEST_ACTIONS))
_RESPONSE_ACTIONS: dict[bytes, int] = {
    b"content-length": _CL,
    b"connection": _CONN,
    b"transfer-encoding": _DECLINE,
    b"upgrade": _DECLINE,
    b"close": _DECLINE,  # (as for requests)
    b"te": _DROP,
    b"trailer": _DROP,
    b"via": _VIA,
    **{n.encode(): _DROP for n in _HOP},
}
_RESPONSE_SPECIAL = _special(tuple(k.decode() for k in _RESPONSE_ACTIONS))


_tuple_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


class FastRequest(NamedTuple):
    method: str
    target: str
    host: bytes  # as sent (the caller normalises and looks it up)
    head: bytes  # request line and kept header lines, without the blank line
    xff: tuple[str, ...]  # X-Forwarded-For values as sent (for the log line's fwd)
    request_id: bytes  # the client's id when valid, else b""
    via: bytes | None  # client Via values joined with ", " (None when none)
    keep_alive: bool


# Both functions below are pure: their answers are memoised by the bytes they read (a client
# repeats its request heads; a dyno its response heads, Date changing once a second). Bounded:
# clients choose what they send.
_MEMO_MAX = 512  # entries per memo: at most 512 heads of <= 8 KB each
_request_memo: dict[bytes, FastRequest | None] = {}
_response_memo: dict[bytes, FastResponse | None] = {}


def fast_request(data: bytes) -> FastRequest | None:
    """A complete, bodiless HTTP/1.1 request head the fast lane may forward as is, or None."""
    if len(data) > MAX_LINE:
        return None  # neither hashed nor kept: a read can be a head and 256 KB of body
    try:
        return _request_memo[data]
    except KeyError:
        pass
    fr = _fast_request(data)
    if len(_request_memo) >= _MEMO_MAX:
        _request_memo.clear()
    _request_memo[data] = fr
    return fr


def _fast_request(data: bytes) -> FastRequest | None:
    m = _REQUEST_LINE.match(data)
    if m is None:
        return None
    start = m.end()
    if _REQUEST_BLOCK.fullmatch(data, start) is None or data.count(b"\n") > MAX_HEADERS + 1:
        return None
    method = m.group(1)
    if method == b"CONNECT":
        return None
    host = None
    rid = b""
    rid_seen = False
    xff: list[str] = []
    vias: list[bytes] = []
    keep_alive = True
    parts: list[bytes] = []
    pos = 0
    base = start - 2
    low = data[base:].lower()
    for sm in _REQUEST_SPECIAL.finditer(low):
        action = _REQUEST_ACTIONS[sm.group(1)]
        s, e = sm.span(2)
        value = data[base + s : base + e].strip(b" \t")
        if action == _HOSTH:
            if host is not None or not _HOST.fullmatch(value):
                return None  # several or invalid Host: the ordinary path refuses it
            host = value
            continue  # kept as sent
        if action == _CONN:
            for token in value.split(b","):
                t = token.strip().lower()
                if t == b"close":
                    keep_alive = False
                elif t and t != b"keep-alive":
                    return None  # headers named in Connection: the ordinary path strips them
        elif action == _CL:
            if value != b"0":
                return None
        elif action == _DECLINE:
            return None
        elif action == _XFF:
            xff.append(value.decode("latin-1"))
        elif action == _RID:
            if rid_seen:
                return None
            rid_seen = True
            if _REQUEST_ID.fullmatch(value):
                rid = value
        elif action == _VIA:
            vias.append(value)
        parts.append(data[pos : base + sm.start() + 2])
        pos = base + e + 2
    if host is None:
        return None
    if parts:
        parts.append(data[pos : len(data) - 2])
        head = b"".join(parts)
    else:
        head = data[: len(data) - 2]
    return _tuple_new(
        FastRequest,
        (
            method.decode("ascii"),
            m.group(2).decode("latin-1"),
            host,
            head,
            tuple(xff),
            rid,
            b", ".join(vias) if vias else None,
            keep_alive,
        ),
    )


def dyno_head(
    fr: FastRequest, forwarded_for: str, forwarded: bytes, start_ms: int, rid: str, via: bytes
) -> bytes:
    """The head the dyno gets: the kept lines, then the router's headers in the ordinary
    path's order. `forwarded` is the connection's "X-Forwarded-Proto: ..\\r\\nX-Forwarded-Port:
    ..\\r\\nX-Request-Start: " prefix; `via` the router's own Via value."""
    return b"%sX-Forwarded-For: %s\r\n%s%d\r\nX-Request-Id: %s\r\nVia: %s\r\n\r\n" % (
        fr.head,
        forwarded_for.encode("latin-1"),
        forwarded,
        start_ms,
        rid.encode("ascii"),
        via if fr.via is None else fr.via + b", " + via,
    )


def client_response(fres: FastResponse, data: bytes, via: bytes, keep_alive: bool) -> bytes:
    """Head and body for the client; `via` is the router's own Via value."""
    return b"%sVia: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        fres.head,
        via if fres.via is None else fres.via + b", " + via,
        len(data) - fres.body_start,
        b"" if keep_alive else b"Connection: close\r\n",
        data[fres.body_start :],
    )


def forwarded_for(xff: Sequence[str], client_ip: str) -> str:
    """X-Forwarded-For towards the dyno: the client's list (cleaned) plus the client IP."""
    if not xff:
        return client_ip
    items = [p.strip() for v in xff for p in v.split(",") if p.strip()]
    items.append(client_ip)
    return ", ".join(items)


class FastResponse(NamedTuple):
    status: int
    head: bytes  # status line (as HTTP/1.1) and kept header lines, without the blank line
    via: bytes | None  # dyno Via values joined with ", " (None when none)
    keep_alive: bool  # the dyno's connection may be reused
    body_start: int
    length: int  # the body's Content-Length


def fast_response(data: bytes) -> FastResponse | None:
    """A whole final response (head and Content-Length body all in `data`) that the fast lane
    may relay, or None (interim, 101/204/304, chunked, close-delimited, partial, unusual)."""
    end = data.find(b"\r\n\r\n", 0, MAX_LINE) + 4
    if end < 4:
        return None
    head = data[:end] if end < len(data) else data
    try:
        fres = _response_memo[head]
    except KeyError:
        fres = _fast_response(head, end)
        if len(_response_memo) >= _MEMO_MAX:
            _response_memo.clear()
        _response_memo[head] = fres
    if fres is None or len(data) - end != fres.length:
        return None
    return fres


def _fast_response(data: bytes, end: int) -> FastResponse | None:
    """`fast_response` of a head alone (`end` is its length)."""
    m = _STATUS_LINE.match(data)
    if m is None:
        return None
    status = int(m.group(2))
    if status < 200 or status == 204 or status == 304:
        return None
    start = m.end()
    if _RESPONSE_BLOCK.fullmatch(data, start, end) is None:
        return None
    http11 = m.group(1) == b"1"
    close = keep = False
    length = -1
    vias: list[bytes] = []
    parts: list[bytes] = [b"HTTP/1.1", data[8:start]]
    pos = start
    base = start - 2
    low = data[base:end].lower()
    for sm in _RESPONSE_SPECIAL.finditer(low):
        action = _RESPONSE_ACTIONS[sm.group(1)]
        s, e = sm.span(2)
        value = low[s:e].strip(b" \t")
        if action == _CL:
            if length >= 0 or not value.isdigit() or len(value) > 18:
                return None
            length = int(value)
        elif action == _CONN:
            for token in value.split(b","):
                t = token.strip().lower()
                if t == b"close":
                    close = True
                elif t == b"keep-alive":
                    keep = True
                elif t:
                    return None
        elif action == _DECLINE:
            return None
        elif action == _VIA:
            vias.append(data[base + s : base + e].strip(b" \t"))
        parts.append(data[pos : base + sm.start() + 2])
        pos = base + e + 2
    if length < 0:
        return None
    parts.append(data[pos : end - 2])
    return _tuple_new(
        FastResponse,
        (
            status,
            b"".join(parts),
            b", ".join(vias) if vias else None,
            not close if http11 else keep,
            end,
            length,
        ),
    )
