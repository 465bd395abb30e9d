"""HTTP/1.1 message heads and body framing, sans-IO.

Hand-written rather than httptools/llhttp: llhttp refuses non-RFC methods and equal duplicate
Content-Length headers, which Router 2.0 accepts, and the router needs the raw line lengths to
apply Heroku's exact limits (8192-byte lines, 1000 headers...). The grammar is kept strict:
CRLF line endings only, token characters in names and methods, no obs-fold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ..errors import Code

MAX_LINE = 8192
MAX_HEADER_NAME = 1000
MAX_HEADERS = 1000
MAX_METHOD = 127
MAX_RESPONSE_HEADER_LINE = 512 * 1024
MAX_SET_COOKIE = 8192
MAX_STATUS_LINE = 8192
MAX_CHUNK_LINE = 4096

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]+\Z")
_DIGITS = re.compile(rb"[0-9]+\Z")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")
_HOST = re.compile(r"[A-Za-z0-9.\-_:\[\]]+")
# Fast path for ordinary heads: one C regex pass validates a whole header block with the same
# grammar as the line-by-line parser below (which still handles, and words the errors of,
# everything else). Values: leading/trailing spaces and tabs stripped, no control characters.
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_BLOCK = re.compile(rb"(?:" + _TCHAR + rb"+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
_FIELD = re.compile(
    rb"(" + _TCHAR + rb"+):[ \t]*((?:[^\x00-\x20\x7f]+(?:[ \t]+[^\x00-\x20\x7f]+)*)?)[ \t]*\r\n"
)
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"{1,127}) ([\x21-\x7e\x80-\xff]+) HTTP/1\.([01])")
_STATUS_LINE = re.compile(
    rb"HTTP/1\.([01]) ([1-9][0-9][0-9]) "
    rb"([\x21-\x7e\x80-\xff](?:[\x09\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)"
)

Headers = list[tuple[str, str]]


class ProtocolError(Exception):
    """A message the router refuses. `status` is what the client gets (requests) and
    `code`/`cause` classify response errors (H17/H25)."""

    def __init__(self, message: str, status: int = 400, code: Code | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    version: str  # "1.1" or "1.0"
    headers: Headers
    body_length: int | None = 0  # None: chunked
    chunked: bool = False
    keep_alive: bool = True
    upgrade: str | None = None
    expect_continue: bool = False
    host: str | None = None
    # filled by the HTTP/1.1 parser's single pass (None: compute from `headers`)
    connection: set[str] | None = None
    xff: list[str] | None = None
    request_id: str | None = None  # "" when none was sent


@dataclass(slots=True)
class ResponseHead:
    version: str
    status: int
    reason: str
    headers: Headers
    chunked: bool = False
    body_length: int | None = None  # None with chunked=False: close-delimited
    keep_alive: bool = True
    connection: set[str] | None = None  # tokens of Connection headers


def find_head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line ending a head, or -1."""
    i = buf.find(b"\r\n\r\n", start)
    return -1 if i < 0 else i + 4


def check_partial_head(buf: bytes | bytearray, max_line: int = MAX_LINE) -> None:
    """Refuse a head still incomplete whose current line already breaks the line limit."""
    last = buf.rfind(b"\n")
    if len(buf) - (last + 1) > max_line:
        raise ProtocolError("line too long", 400 if max_line == MAX_LINE else 502, Code.H25)
    if buf.count(b"\n") > MAX_HEADERS + 1:
        raise ProtocolError("too many headers", 400, Code.H25)


def _split_lines(head: bytes) -> list[bytes]:
    lines = head.split(b"\r\n")
    # the head ends with CRLF CRLF: drop the two empty tails
    if len(lines) >= 2 and lines[-1] == b"" and lines[-2] == b"":
        lines = lines[:-2]
    for line in lines:
        if b"\n" in line or b"\r" in line:
            raise ProtocolError("bare CR or LF in head")
    return lines


def _parse_header_lines(
    lines: list[bytes], max_line: int, max_name: int, is_response: bool
) -> Headers:
    headers: Headers = []
    if len(lines) > MAX_HEADERS:
        raise ProtocolError("too many headers", 400, Code.H25)
    for line in lines:
        if len(line) > max_line:
            raise ProtocolError("header line too long", 502 if is_response else 400, Code.H25)
        colon = line.find(b":")
        if colon <= 0:
            raise ProtocolError("malformed header line", 502 if is_response else 400, Code.H17)
        name = line[:colon]
        if len(name) > max_name:
            raise ProtocolError("header name too long", 502 if is_response else 400, Code.H25)
        if not _TOKEN.match(name):
            raise ProtocolError("invalid header name", 502 if is_response else 400, Code.H17)
        value = line[colon + 1 :].strip(b" \t")
        if _BAD_VALUE.search(value):
            raise ProtocolError("invalid header value", 502 if is_response else 400, Code.H17)
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return headers


def _fast_fields(block: bytes) -> Headers | None:
    """Header lines of a block ending in CRLF, or None when the slow path must decide."""
    if not _BLOCK.fullmatch(block):
        return None
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in _FIELD.findall(block)]
    if len(headers) > MAX_HEADERS:
        return None
    return headers


def _content_length(values: list[str], status: int, code: Code | None) -> int:
    """Equal duplicates merge; differing values or lists like `15,24` are refused."""
    if len(values) == 1:
        only = values[0]
        if only.isascii() and only.isdigit() and len(only) <= 18:  # the usual single value
            return int(only)
    seen: set[str] = set()
    for v in values:
        for part in v.split(","):
            seen.add(part.strip())
    if len(seen) != 1:
        raise ProtocolError("conflicting Content-Length", status, code)
    (only,) = seen
    if not _DIGITS.match(only.encode("latin-1")) or len(only) > 18:
        raise ProtocolError("invalid Content-Length", status, code)
    return int(only)


def _transfer_chunked(values: list[str], status: int, code: Code | None) -> bool:
    codings = [c.strip().lower() for v in values for c in v.split(",") if c.strip()]
    if not codings:
        return False
    if codings[-1] != "chunked" or codings.count("chunked") != 1:
        # anything but a final single "chunked" makes the body length unknowable
        raise ProtocolError("unsupported Transfer-Encoding", status, code)
    return True


def partial_request(buf: bytes | bytearray) -> RequestHead | None:
    """What an incomplete head already tells: its request line and a single Host header among
    its complete lines (for the H28 line of a client gone silent mid-head), or None."""
    lines = bytes(buf).split(b"\r\n")[:-1]  # complete lines only
    if len(lines) < 2:
        return None
    hosts = [ln.split(b":", 1)[1].strip(b" \t") for ln in lines[1:] if ln[:5].lower() == b"host:"]
    parts = lines[0].split(b" ")
    if len(hosts) != 1 or len(parts) != 3:
        return None
    try:
        host = hosts[0].decode("ascii")
        return RequestHead(
            parts[0].decode("ascii"), parts[1].decode("latin-1"), "1.1", [("Host", host)], host=host
        )
    except UnicodeDecodeError:
        return None


def parse_request_head(head: bytes) -> RequestHead:
    req = _fast_request(head) if len(head) <= MAX_LINE else None
    if req is None:
        req = _slow_request(head)
    return _finish_request(req)


def _fast_request(head: bytes) -> RequestHead | None:
    i = head.find(b"\r\n")
    m = _REQUEST_LINE.fullmatch(head, 0, i)
    if m is None:
        return None
    headers = _fast_fields(head[i + 2 : len(head) - 2])
    if headers is None:
        return None
    if len(head) > MAX_HEADER_NAME and any(len(k) > MAX_HEADER_NAME for k, _ in headers):
        return None
    method_b, target_b, minor = m.groups()
    return RequestHead(
        method_b.decode("ascii"),
        target_b.decode("latin-1"),
        "1.1" if minor == b"1" else "1.0",
        headers,
    )


def _slow_request(head: bytes) -> RequestHead:
    lines = _split_lines(head)
    if not lines or not lines[0]:
        raise ProtocolError("empty request line")
    request_line = lines[0]
    if len(request_line) > MAX_LINE:
        raise ProtocolError("request line too long", 414)
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise ProtocolError("malformed request line")
    method_b, target_b, version_b = parts
    if len(method_b) > MAX_METHOD:
        raise ProtocolError("method too long")
    if not _TOKEN.match(method_b):
        raise ProtocolError("invalid method")
    if not _TARGET.match(target_b):
        raise ProtocolError("invalid request target")
    if version_b == b"HTTP/1.1":
        version = "1.1"
    elif version_b == b"HTTP/1.0":
        version = "1.0"
    elif version_b.startswith(b"HTTP/"):
        raise ProtocolError("HTTP version not supported", 505)
    else:
        raise ProtocolError("malformed request line")
    headers = _parse_header_lines(lines[1:], MAX_LINE, MAX_HEADER_NAME, False)
    return RequestHead(method_b.decode("ascii"), target_b.decode("latin-1"), version, headers)


def _finish_request(req: RequestHead) -> RequestHead:
    headers = req.headers
    version = req.version
    cl: list[str] = []
    te: list[str] = []
    hosts: list[str] = []
    expect: list[str] = []
    xff: list[str] = []
    conn: set[str] = set()
    upgrade: str | None = None
    request_id: str | None = ""  # "" none sent
    for k, v in headers:
        lk = k.lower()
        if lk == "host":
            hosts.append(v)
        elif lk == "connection":
            conn.update(t.strip().lower() for t in v.split(",") if t.strip())
        elif lk == "content-length":
            cl.append(v)
        elif lk == "transfer-encoding":
            te.append(v)
        elif lk == "x-forwarded-for":
            xff.append(v)
        elif lk == "x-request-id":
            request_id = v if request_id == "" else None  # several: the caller scans
        elif lk == "expect":
            expect.append(v)
        elif lk == "upgrade":
            upgrade = v
    req.connection = conn
    req.xff = xff
    req.request_id = request_id
    if len(hosts) > 1:
        raise ProtocolError("several Host headers")
    if hosts:
        host = hosts[0]
        if not host or not _HOST.fullmatch(host):
            raise ProtocolError("invalid Host header")
        req.host = host
    elif version == "1.1" or version == "1.0":
        raise ProtocolError("missing Host header")
    if te:
        if version == "1.0":
            raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request")
        req.chunked = _transfer_chunked(te, 400, None)
        req.body_length = None if req.chunked else 0
    elif cl:
        req.body_length = _content_length(cl, 400, None)
    if version == "1.1":
        # Router 2.0 lets chunked win over a Content-Length sent with it (RFC 9112 6.1): the
        # Content-Length is not forwarded and the connection closes after the response, so
        # bytes a smuggler framed for a second request are never read as one
        req.keep_alive = "close" not in conn and not (cl and te)
    else:
        req.keep_alive = "keep-alive" in conn
    if upgrade is not None and "upgrade" in conn and version == "1.1":
        req.upgrade = upgrade
    if expect:
        if len(expect) == 1 and expect[0].strip().lower() == "100-continue":
            req.expect_continue = version == "1.1"
        else:
            raise ProtocolError("unsupported Expect", 417)
    return req


def parse_response_head(head: bytes, request_method: str) -> ResponseHead:
    """Parse a dyno's response head. Errors carry H17 (malformed) or H25 (limits)."""
    resp = _fast_response(head) if len(head) <= MAX_STATUS_LINE else None
    if resp is None:
        resp = _slow_response(head)
    return _finish_response(resp, request_method)


def _fast_response(head: bytes) -> ResponseHead | None:
    # heads under 8192 bytes cannot break the status line, name or Set-Cookie limits
    i = head.find(b"\r\n")
    m = _STATUS_LINE.fullmatch(head, 0, i)
    if m is None:
        return None
    headers = _fast_fields(head[i + 2 : len(head) - 2])
    if headers is None:
        return None
    minor, status, reason = m.groups()
    return ResponseHead(
        "1.1" if minor == b"1" else "1.0", int(status), reason.decode("latin-1"), headers
    )


def _slow_response(head: bytes) -> ResponseHead:
    lines = head.split(b"\r\n")
    if len(lines) >= 2 and lines[-1] == b"" and lines[-2] == b"":
        lines = lines[:-2]
    if not lines:
        raise ProtocolError("empty response", 502, Code.H17)
    status_line = lines[0]
    if len(status_line) > MAX_STATUS_LINE:
        raise ProtocolError("oversized status line", 502, Code.H25)
    parts = status_line.split(b" ", 2)
    if len(parts) < 3 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError("malformed status line", 502, Code.H17)
    if len(parts[1]) != 3 or not _DIGITS.match(parts[1]):
        raise ProtocolError("malformed status code", 502, Code.H17)
    reason = parts[2].strip()
    if not reason or _BAD_VALUE.search(reason) or b"\r" in reason:
        raise ProtocolError("status line without reason phrase", 502, Code.H17)
    status = int(parts[1])
    if status < 100:
        raise ProtocolError("malformed status code", 502, Code.H17)
    for line in lines[1:]:
        if b"\n" in line or b"\r" in line:
            raise ProtocolError("bare CR or LF in response head", 502, Code.H17)
    headers = _parse_header_lines(lines[1:], MAX_RESPONSE_HEADER_LINE, MAX_LINE, True)
    version = parts[0][5:].decode("ascii")
    return ResponseHead(version, status, reason.decode("latin-1"), headers)


def _finish_response(resp: ResponseHead, request_method: str) -> ResponseHead:
    headers = resp.headers
    version = resp.version
    status = resp.status
    cl: list[str] = []
    te: list[str] = []
    conn: set[str] = set()
    for k, v in headers:
        lk = k.lower()
        if lk == "content-length":
            cl.append(v)
        elif lk == "connection":
            conn.update(t.strip().lower() for t in v.split(",") if t.strip())
        elif lk == "transfer-encoding":
            te.append(v)
        elif lk == "set-cookie" and len(k) + len(v) + 2 > MAX_SET_COOKIE:
            raise ProtocolError("oversized cookie", 502, Code.H25)
    resp.connection = conn
    resp.keep_alive = ("close" not in conn) if version == "1.1" else ("keep-alive" in conn)
    if request_method == "HEAD" or status < 200 or status in (204, 304):
        resp.body_length = 0
        return resp
    if te:
        resp.chunked = _transfer_chunked(te, 502, Code.H25)
        if resp.chunked:
            resp.body_length = None
            return resp
    if cl:
        resp.body_length = _content_length(cl, 502, Code.H25)
    else:
        resp.body_length = None
        resp.keep_alive = False
    return resp


class ChunkState(StrEnum):
    """Where a chunked body's decoder is."""

    SIZE = "size"  # reading a chunk-size line
    DATA = "data"  # inside a chunk's data
    DATA_END = "data-end"  # the CRLF after a chunk's data
    TRAILER = "trailer"  # trailer lines after the last chunk, up to the blank line
    DONE = "done"  # the blank line ending the body was read


class ChunkedDecoder:
    """Decodes a chunked body: feed() returns payload bytes; `done` once the trailer ends."""

    __slots__ = ("_buf", "state", "_remaining", "trailers")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.state = ChunkState.SIZE
        self._remaining = 0
        self.trailers: Headers = []

    @property
    def done(self) -> bool:
        return self.state is ChunkState.DONE

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Returns (payload, leftover after the end of the body)."""
        buf = self._buf
        buf += data
        out = bytearray()
        state = self.state
        while state is not ChunkState.DONE:
            if state is ChunkState.SIZE:
                i = buf.find(b"\r\n")
                if i < 0:
                    if len(buf) > MAX_CHUNK_LINE:
                        raise ProtocolError("chunk size line too long")
                    break
                line = bytes(buf[:i])
                del buf[: i + 2]
                size_part = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.match(size_part):
                    raise ProtocolError("invalid chunk size")
                self._remaining = int(size_part, 16)
                state = ChunkState.DATA if self._remaining else ChunkState.TRAILER
            elif state is ChunkState.DATA:
                if not buf:
                    break
                n = min(self._remaining, len(buf))
                out += buf[:n]
                del buf[:n]
                self._remaining -= n
                if self._remaining == 0:
                    state = ChunkState.DATA_END
            elif state is ChunkState.DATA_END:
                if len(buf) < 2:
                    if buf and buf[0:1] != b"\r":
                        raise ProtocolError("missing CRLF after chunk data")
                    break
                if buf[:2] != b"\r\n":
                    raise ProtocolError("missing CRLF after chunk data")
                del buf[:2]
                state = ChunkState.SIZE
            else:
                i = buf.find(b"\r\n")
                if i < 0:
                    if len(buf) > MAX_LINE:
                        raise ProtocolError("trailer line too long")
                    break
                line = bytes(buf[:i])
                del buf[: i + 2]
                if not line:
                    state = ChunkState.DONE
                    break
                if len(self.trailers) >= MAX_HEADERS:
                    raise ProtocolError("too many trailers")
                self.trailers += _parse_header_lines([line], MAX_LINE, MAX_HEADER_NAME, False)
        self.state = state
        leftover = b""
        if state is ChunkState.DONE and buf:
            leftover = bytes(buf)
            buf.clear()
        return bytes(out), leftover


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"


def serialize_request_head(method: str, target: str, headers: Headers) -> bytes:
    parts = [f"{method} {target} HTTP/1.1\r\n"]
    parts.extend(f"{k}: {v}\r\n" for k, v in headers)
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")


def serialize_response_head(
    status: int, reason: str, headers: Headers, version: str = "1.1"
) -> bytes:
    parts = [f"HTTP/{version} {status} {reason}\r\n"]
    parts.extend(f"{k}: {v}\r\n" for k, v in headers)
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")
