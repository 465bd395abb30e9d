"""HTTP/2 request header blocks: validation in one pass, and the request as the router sees it.

Requests leave towards the dyno as HTTP/1.1, so everything that could be read differently
there is refused here (RFC 9113 8.2 and 8.3): non-token or uppercase names, control characters
(NUL, CR, LF and the others HTTP/1.1 refuses) or surrounding whitespace in values,
connection-specific headers, TE other than "trailers", pseudo-headers that are unknown,
repeated, after regular headers or missing, an empty or non-origin-form :path, a method that
is not a token, :authority and Host that disagree, several Host headers. A refused block is a
malformed request: the stream is reset with PROTOCOL_ERROR and nothing reaches a dyno.
"""

from __future__ import annotations

import re

from .http1 import MAX_HEADER_NAME, MAX_HEADERS, MAX_LINE, RequestHead

_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,127}\Z")
_PATH = re.compile(rb"(?:/[\x21-\x7e\x80-\xff]*|\*)\Z")
_HOST = re.compile(rb"[A-Za-z0-9.\-_:\[\]]+\Z")
_DIGITS = re.compile(rb"[0-9]{1,18}\Z")
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})

Header = tuple[bytes, bytes]


class Malformed(Exception):
    """A malformed request or trailer block (RFC 9113 8.1.1): a stream error PROTOCOL_ERROR."""


class H2Request:
    """A validated request header block; immutable (but for the fast lane's cached dyno head
    template), so equal blocks may share one."""

    __slots__ = (
        "method",
        "path",
        "authority",
        "headers",
        "content_length",
        "bad",
        "xff",
        "request_id",
        "dyno_head",
    )

    def __init__(
        self,
        method: str,
        path: str,
        authority: str,
        headers: tuple[tuple[str, str], ...],
        content_length: int | None,
        bad: str | None,
        xff: tuple[str, ...],
        request_id: str | None,
    ) -> None:
        self.method = method
        self.path = path
        self.authority = authority
        self.headers = headers
        self.content_length = content_length
        self.bad = bad  # why the router answers 400 (the block itself is well-formed)
        self.xff = xff
        self.request_id = request_id
        # the fast lane's template of the head sent to dynos: (key, before, after)
        self.dyno_head: tuple[tuple[str, str, int, bool], bytes, bytes] | None = None

    def head(self, ended: bool) -> RequestHead:
        """A fresh RequestHead (exchanges may keep it) for a stream ended or not."""
        length = 0 if ended else self.content_length
        return RequestHead(
            self.method,
            self.path,
            "2",
            list(self.headers),
            body_length=length,
            chunked=length is None,
            host=self.authority,
            connection=set(),
            xff=list(self.xff),
            request_id=self.request_id,
        )


def _check_field(name: bytes, value: bytes) -> None:
    if not _NAME.match(name):
        raise Malformed(f"invalid header name {name[:64]!r}")
    if value and (
        _BAD_VALUE.search(value) is not None
        or value[0] in (0x20, 0x09)
        or value[-1] in (0x20, 0x09)
    ):
        raise Malformed(f"invalid value for {name[:64]!r}")
    if name in CONNECTION_SPECIFIC:
        raise Malformed(f"connection-specific header {name!r}")
    if name == b"te" and value.lower() != b"trailers":
        raise Malformed("TE other than trailers")


def parse_request(block: list[Header]) -> H2Request:
    """Validate a request header block (one pass) and turn it into an `H2Request`."""
    pseudo: dict[bytes, bytes] = {}
    regular = False
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    cl: list[bytes] = []
    xff: list[str] = []
    host: bytes | None = None
    request_id: str | None = ""
    for name, value in block:
        if name[:1] == b":":
            if regular:
                raise Malformed(f"pseudo-header {name!r} after regular headers")
            if name not in _PSEUDO:
                raise Malformed(f"unknown pseudo-header {name[:64]!r}")
            if name in pseudo:
                raise Malformed(f"repeated pseudo-header {name!r}")
            if _BAD_VALUE.search(value) is not None:
                raise Malformed(f"invalid value for {name!r}")
            pseudo[name] = value
            continue
        regular = True
        _check_field(name, value)
        n = name.decode("latin-1")
        v = value.decode("latin-1")
        if name == b"cookie":
            cookies.append(v)
            continue
        if name == b"host":
            if host is not None:
                raise Malformed("several Host headers")
            host = value
        elif name == b"content-length":
            cl.append(value)
        elif name == b"x-forwarded-for":
            xff.append(v)
        elif name == b"x-request-id":
            request_id = v if request_id == "" else None  # several: the exchange scans
        headers.append((n, v))
    method = pseudo.get(b":method")
    if not method:
        raise Malformed("missing :method")
    if not _METHOD.match(method):
        raise Malformed("invalid :method")
    path = pseudo.get(b":path")
    if method == b"CONNECT":
        if b":scheme" in pseudo or path is not None:
            raise Malformed("CONNECT with :scheme or :path")
    else:
        if b":scheme" not in pseudo:
            raise Malformed("missing :scheme")
        if path is None:
            raise Malformed("missing :path")
        if not path:
            raise Malformed("empty :path")
        if not _PATH.match(path) or (path == b"*" and method != b"OPTIONS"):
            raise Malformed("invalid :path")
    authority = pseudo.get(b":authority")
    if authority is None and host is None:
        raise Malformed("neither :authority nor Host")
    if (
        authority is not None
        and host is not None
        and authority != host
        and authority.lower() != host.lower()  # host names compare without case (RFC 3986 6.2)
    ):
        raise Malformed(":authority and Host disagree")
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    auth = authority if authority else host or b""
    bad: str | None = None
    if not auth or not _HOST.match(auth):
        bad = "invalid authority"
    # the limits an HTTP/1.1 client meets (the dyno gets these as HTTP/1.1 lines): at most
    # 1000 fields, 8192 bytes a line and 1000 a name, the request line within 8192
    # (cookie crumbs are joined into one line by now)
    elif len(headers) > MAX_HEADERS:
        bad = "too many headers"
    elif len(method) + len(path or b"") + 10 > MAX_LINE:
        bad = "request line too long"
    elif any(len(k) > MAX_HEADER_NAME or len(k) + len(v) + 2 > MAX_LINE for k, v in headers):
        bad = "header line too long"
    if host is None:
        headers.insert(0, ("host", auth.decode("latin-1")))
    length: int | None = None
    if cl:
        if any(not _DIGITS.match(v) for v in cl):
            raise Malformed("invalid content-length")
        if len(set(cl)) != 1:
            bad = "conflicting content-length"
        else:
            length = int(cl[0])
    return H2Request(
        method.decode("latin-1"),
        (path or b"").decode("latin-1"),
        auth.decode("latin-1"),
        tuple(headers),
        length,
        bad,
        tuple(xff),
        request_id,
    )


def check_trailers(block: list[Header]) -> None:
    """Trailers are dropped, but a malformed trailer block still refuses the request."""
    for name, value in block:
        if name[:1] == b":":
            raise Malformed("pseudo-header in trailers")
        _check_field(name, value)
