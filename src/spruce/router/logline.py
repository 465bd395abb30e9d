"""The router log line, in Router 2.0's exact logfmt layout."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import H_CODES


class Wire(StrEnum):
    """The client's protocol (`protocol=`)."""

    HTTP1 = "http1.1"
    HTTP2 = "http2.0"


class TLSVersion(StrEnum):
    """`tls_version=`: unknown on plain HTTP."""

    TLS12 = "tls1.2"
    TLS13 = "tls1.3"
    UNKNOWN = "unknown"


def quote(v: str) -> str:
    if "\\" not in v and '"' not in v:
        return '"' + v + '"'
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_tail(protocol: str, tls: bool, tls_version: str) -> str:
    """The end of every line of one connection."""
    return f" protocol={protocol} tls={'true' if tls else 'false'} tls_version={tls_version}"


def info_line(
    method: str,
    path: str,
    host: str,
    request_id: str,
    fwd: str,
    dyno: str,
    connect_ms: int | None,
    service_ms: int | None,
    status: int | None,
    size: int | None,
    tail: str,
) -> str:
    """The common line (no H code), in one f-string: the fast lanes and `RouterLine` share it."""
    return (
        f"at=info method={method} path={quote(path)} host={host} "
        f"request_id={request_id} fwd={quote(fwd)} dyno={dyno} "
        f"connect={'' if connect_ms is None else f'{connect_ms}ms'} "
        f"service={'' if service_ms is None else f'{service_ms}ms'} "
        f"status={'' if status is None else status} "
        f"bytes={'' if size is None else size}{tail}"
    )


@dataclass(slots=True)
class RouterLine:
    method: str
    path: str
    host: str
    request_id: str
    fwd: str
    protocol: str  # a Wire
    tls: bool
    tls_version: str  # a TLSVersion
    dyno: str | None = None
    connect_ms: int | None = None
    service_ms: int | None = None
    status: int | None = None
    bytes: int | None = None
    code: str | None = None
    cause: str | None = None
    agent: str | None = None

    def format(self) -> str:
        if not self.code:
            return info_line(
                self.method,
                self.path,
                self.host,
                self.request_id,
                self.fwd,
                self.dyno or "",
                self.connect_ms,
                self.service_ms,
                self.status,
                self.bytes,
                line_tail(self.protocol, self.tls, self.tls_version),
            )
        parts: list[str] = []
        if self.code:
            h = H_CODES[self.code]
            if h.sock:
                parts.append(f"sock={h.sock}")
            parts.append(f"at={h.at}")
            parts.append(f"code={self.code}")
            parts.append(f"desc={quote(h.desc)}")
            if self.cause is not None:
                parts.append(f"cause={quote(self.cause)}")
            if self.agent is not None:
                parts.append(f"agent={quote(self.agent)}")
        else:
            parts.append("at=info")
        parts.append(f"method={self.method}")
        parts.append(f"path={quote(self.path)}")
        parts.append(f"host={self.host}")
        parts.append(f"request_id={self.request_id}")
        parts.append(f"fwd={quote(self.fwd)}")
        parts.append(f"dyno={self.dyno or ''}")
        parts.append("connect=" + ("" if self.connect_ms is None else f"{self.connect_ms}ms"))
        parts.append("service=" + ("" if self.service_ms is None else f"{self.service_ms}ms"))
        parts.append("status=" + ("" if self.status is None else str(self.status)))
        parts.append("bytes=" + ("" if self.bytes is None else str(self.bytes)))
        parts.append(f"protocol={self.protocol}")
        parts.append(f"tls={'true' if self.tls else 'false'}")
        parts.append(f"tls_version={self.tls_version}")
        return " ".join(parts)
