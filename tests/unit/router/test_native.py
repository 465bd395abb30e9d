"""The mypyc-compiled router modules and their pure-Python sources answer alike.

The sources are loaded a second time, from their .py files only, as `_pure_spruce.*`; hypothesis
feeds both the same bytes (heads, chunked bodies, HTTP/2 frames, HPACK blocks) and the same
calls, and every answer (or error) must be equal. Skipped where nothing was compiled (a
machine without a C compiler, or SPRUCE_ROUTER_PURE=1).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spruce.router import native

SRC = Path(native.__file__).resolve().parents[2]
ALIAS = "_pure_spruce"

for _name in native.COMPILED:
    importlib.import_module(_name)
pytestmark = pytest.mark.skipif(
    not native.compiled(), reason="no compiled router modules in this process"
)


class _PureTree(importlib.abc.MetaPathFinder):
    """`_pure_spruce.x.y` is src/spruce/x/y.py, always from source."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        rel = Path("spruce", *fullname.split(".")[1:])
        package = SRC / rel / "__init__.py"
        if package.exists():
            loader = importlib.machinery.SourceFileLoader(fullname, str(package))
            return importlib.util.spec_from_file_location(
                fullname, package, loader=loader, submodule_search_locations=[str(SRC / rel)]
            )
        module = (SRC / rel).with_suffix(".py")
        if module.exists():
            loader = importlib.machinery.SourceFileLoader(fullname, str(module))
            return importlib.util.spec_from_file_location(fullname, module, loader=loader)
        return None


sys.meta_path.insert(0, _PureTree())


def _both(name: str) -> tuple[ModuleType, ModuleType]:
    compiled = importlib.import_module(name)
    pure = importlib.import_module(ALIAS + name.removeprefix("spruce"))
    assert str(compiled.__file__).endswith(".so") and str(pure.__file__).endswith(".py")
    return compiled, pure


def plain(x: Any) -> Any:
    """A value both module copies can be compared by: their classes differ."""
    if isinstance(x, enum.Enum):
        return x.value
    if isinstance(x, (str, bytes, bytearray, int, float, bool)) or x is None:
        return x
    if isinstance(x, dict):
        return {plain(k): plain(v) for k, v in x.items()}
    if isinstance(x, (set, frozenset)):
        return sorted(plain(v) for v in x)
    if isinstance(x, (list, tuple)):
        return [type(x).__name__ if hasattr(x, "_fields") else "seq", [plain(v) for v in x]]
    if isinstance(x, BaseException):
        return ["error", type(x).__name__, str(x), plain(getattr(x, "__dict__", {}))]
    if dataclasses.is_dataclass(x):
        return [
            type(x).__name__,
            {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)},
        ]
    names = {
        n
        for c in type(x).__mro__
        for n in (*getattr(c, "__slots__", ()), *getattr(c, "__mypyc_attrs__", ()))
        if not n.startswith("__")
    } or set(vars(x))
    return [type(x).__name__, {n: plain(getattr(x, n, None)) for n in sorted(names)}]


def outcome(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return plain(call(*args))
    except Exception as e:  # the same error either way, message and fields included
        return plain(e)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TCHARS = "!#$%&'*+-.^_`|~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_names = st.text(alphabet=_TCHARS, min_size=1, max_size=12)
_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
_special = st.sampled_from(
    [
        "Host",
        "Connection",
        "Content-Length",
        "Transfer-Encoding",
        "X-Forwarded-For",
        "X-Request-Id",
        "Via",
        "Expect",
        "Upgrade",
        "Keep-Alive",
        "Set-Cookie",
    ]
)


@st.composite
def heads(draw: st.DrawFn, request: bool) -> bytes:
    """Mostly well-formed heads, with the headers the router acts on, and some noise."""
    if request:
        method = draw(st.sampled_from(["GET", "HEAD", "POST", "PURGE", "CONNECT", "G@T"]))
        line = f"{method} {draw(st.sampled_from(['/', '/a?b', '*', '/x y']))} HTTP/1.{draw(st.sampled_from('01'))}"
    else:
        line = f"HTTP/1.{draw(st.sampled_from('01'))} {draw(st.sampled_from(['200 OK', '204 No Content', '101 Switching', '304 NM', '500 ', '99 x']))}"
    fields = draw(st.lists(st.tuples(st.one_of(_special, _names), _values), max_size=8))
    text = line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    data = text.encode("latin-1")
    if draw(st.booleans()):
        body = draw(st.binary(max_size=40))
        data += body
    if draw(st.integers(0, 9)) == 0:  # a stray byte anywhere
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.sampled_from([b"\n", b"\r", b"\x00", b" ", b":"])) + data[i:]
    return data


@SETTINGS
@given(heads(request=True))
def test_request_heads_alike(data: bytes) -> None:
    (cf, pf), (ch, ph) = _both("spruce.router.proto.fast"), _both("spruce.router.proto.http1")
    assert outcome(lambda: cf._fast_request(data)) == outcome(lambda: pf._fast_request(data))
    end = data.find(b"\r\n\r\n") + 4
    if end >= 4:
        head = data[:end]
        assert outcome(lambda: ch.parse_request_head(head)) == outcome(
            lambda: ph.parse_request_head(head)
        )
        assert outcome(lambda: ch.partial_request(head[:-3])) == outcome(
            lambda: ph.partial_request(head[:-3])
        )


@SETTINGS
@given(heads(request=False), st.sampled_from(["GET", "HEAD"]))
def test_response_heads_alike(data: bytes, method: str) -> None:
    (cf, pf), (ch, ph) = _both("spruce.router.proto.fast"), _both("spruce.router.proto.http1")
    assert outcome(lambda: cf.fast_response(data)) == outcome(lambda: pf.fast_response(data))
    end = data.find(b"\r\n\r\n") + 4
    if end >= 4:
        head = data[:end]
        assert outcome(lambda: ch.parse_response_head(head, method)) == outcome(
            lambda: ph.parse_response_head(head, method)
        )


@SETTINGS
@given(st.lists(st.binary(max_size=24), max_size=8), st.booleans())
def test_chunked_decoding_alike(pieces: list[bytes], valid_start: bool) -> None:
    c, p = _both("spruce.router.proto.http1")
    if valid_start:
        pieces = [b"5\r\nhello\r\n", *pieces]
    dc, dp = c.ChunkedDecoder(), p.ChunkedDecoder()
    for piece in pieces:
        a, b = outcome(dc.feed, piece), outcome(dp.feed, piece)
        assert a == b
        if a and a[0] == "error":
            break
        assert plain(dc.state) == plain(dp.state) and dc.done == dp.done


_ACTIONS = st.sampled_from(["start", "post", "chunked", "body", "head", "piece", "end", "cycle"])


@SETTINGS
@given(st.lists(st.tuples(_ACTIONS, st.binary(max_size=12)), max_size=24))
def test_h1_state_machines_alike(steps: list[tuple[str, bytes]]) -> None:
    (c, p), (ch, ph) = _both("spruce.router.proto.h1"), _both("spruce.router.proto.http1")
    heads_ = {
        "start": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "post": b"POST / HTTP/1.0\r\nHost: a\r\nContent-Length: 7\r\n\r\n",
        "chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    }
    sc, sp = c.H1State(), p.H1State()
    bufs = (bytearray(), bytearray())
    for action, data in steps:
        results = []
        for s, mod, buf in ((sc, ch, bufs[0]), (sp, ph, bufs[1])):

            def step(
                s: Any = s,
                mod: Any = mod,
                buf: bytearray = buf,
                action: str = action,
                data: bytes = data,
            ) -> Any:
                if action in heads_:
                    return s.start(mod.parse_request_head(heads_[action]))
                if action == "body":
                    buf += data
                    return s.body_from(buf)
                if action == "head":
                    return s.response_head(200, "OK", [("A", "b")], len(data) or None)
                if action == "piece":
                    return s.body_piece(data)
                if action == "end":
                    return s.response_end()
                return s.end_cycle()

            results.append(outcome(step))
        assert results[0] == results[1]
        assert (plain(sc.request), plain(sc.response), sc.keep_alive) == (
            plain(sp.request),
            plain(sp.response),
            sp.keep_alive,
        )


@SETTINGS
@given(st.binary(max_size=64))
def test_hpack_decoding_alike(block: bytes) -> None:
    c, p = _both("spruce.router.proto.hpack")
    dc, dp = c.Decoder(), p.Decoder()
    for _ in range(2):  # the second pass against the table the first one left
        assert outcome(lambda: dc.decode(block)) == outcome(lambda: dp.decode(block))
        assert (dc.gen, dc.size) == (dp.gen, dp.size)


_h2_headers = st.lists(
    st.tuples(
        st.sampled_from([b":method", b":path", b":scheme", b":authority", b"host", b"te", b"x-a"])
        | st.binary(min_size=1, max_size=6),
        st.binary(max_size=10),
    ),
    max_size=8,
)


@SETTINGS
@given(_h2_headers, st.integers(0, 4096))
def test_hpack_encoding_and_h2_requests_alike(
    headers: list[tuple[bytes, bytes]], size: int
) -> None:
    (c, p), (rc, rp) = _both("spruce.router.proto.hpack"), _both("spruce.router.proto.h2_request")
    ec, ep = c.Encoder(), p.Encoder()
    ec.set_peer_max(size)
    ep.set_peer_max(size)
    for _ in range(2):
        assert outcome(lambda: ec.encode(headers)) == outcome(lambda: ep.encode(headers))
    assert outcome(lambda: rc.parse_request(headers)) == outcome(lambda: rp.parse_request(headers))


def _frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + sid.to_bytes(4, "big") + payload
    )


_frames = st.lists(
    st.builds(
        _frame,
        st.integers(0, 10),
        st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x25]),
        st.sampled_from([0, 1, 3, 5, 2]),
        st.binary(max_size=20),
    ),
    max_size=10,
)


@SETTINGS
@given(_frames, st.integers(1, 64))
def test_h2_connections_alike(frames: list[bytes], cut: int) -> None:
    c, p = _both("spruce.router.proto.h2")
    hpack_c, _ = _both("spruce.router.proto.hpack")
    request = hpack_c.Encoder().encode(
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a")]
    )
    data = c.PREFACE + _frame(4, 0, 0, b"") + _frame(1, 5, 1, request) + b"".join(frames)
    sc, sp = c.H2Server(), p.H2Server()
    sc.initiate()
    sp.initiate()
    for i in range(0, len(data), cut):
        piece = data[i : i + cut]
        assert outcome(sc.receive, piece) == outcome(sp.receive, piece)
        assert sc.data_to_send() == sp.data_to_send()
        assert (sc.error, sorted(sc.streams)) == (sp.error, sorted(sp.streams))
    for sid in (1, 3):
        status = [(b":status", b"200")]
        assert outcome(sc.send_headers, sid, status, True) == outcome(
            sp.send_headers, sid, status, True
        )
        assert sc.data_to_send() == sp.data_to_send()


def _entry(flags: tuple[bool, bool, bool, int, bool]) -> dict[str, Any]:
    maintenance, released, exhausted, web, h2_off = flags
    return {
        "id": "a",
        "hostnames": ["demo.example.org"],
        "maintenance": maintenance,
        "released": released,
        "eco_quota_exhausted": exhausted,
        "web_quantity": web,
        "features": ["http-disable-http2"] if h2_off else [],
        "dynos": [{"name": "web.1", "host": "127.0.0.1", "port": 1, "state": "up"}],
    }


@SETTINGS
@given(
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.integers(-1, 3), st.booleans()),
    st.sampled_from([None, "demo.example.org", "x.example.org", "nowhere.test"]),
    st.booleans(),
    st.integers(0, 900),
    st.integers(0, 3000),
)
def test_admission_alike(
    flags: tuple[bool, bool, bool, int, bool],
    sni: str | None,
    http2: bool,
    inflight: int,
    connections: int,
) -> None:
    from spruce.router.table import RouteTable

    c, p = _both("spruce.router.admission")
    cert = {"id": "w", "hostnames": ["*.example.org"], "cert_pem": "-", "key_pem": "-"}
    table = RouteTable({"apps": {"a": _entry(flags)}, "certificates": [cert]})
    app = table.apps["a"]
    args = (table, app, "demo.example.org", sni, http2, inflight, connections, 1000)
    assert plain(c.refusal(*args)) == plain(p.refusal(*args))
    assert plain(c.no_dyno_up(app)) == plain(p.no_dyno_up(app))


@SETTINGS
@given(st.lists(st.tuples(_names, st.text(max_size=30), st.integers(0, 2**62)), max_size=6))
def test_control_log_batches_alike(entries: list[tuple[str, str, int]]) -> None:
    c, p = _both("spruce.router.control")
    lines_c = [c.log_entry(a, line, ts) for a, line, ts in entries]
    assert lines_c == [p.log_entry(a, line, ts) for a, line, ts in entries]
    assert c.encode_log(lines_c) == p.encode_log(lines_c)
    assert c.encode({"t": "x", "e": entries}) == p.encode({"t": "x", "e": entries})
