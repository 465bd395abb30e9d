"""The router log line, in Router 2.0's exact logfmt layout."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import H_CODES


def _quote(v: str) -> str:
    if "\\" not in v and '"' not in v:
        return '"' + v + '"'
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(slots=True)
class RouterLine:
    method: str
    path: str
    host: str
    request_id: str
    fwd: str
    protocol: str  # "http1.1" | "http2.0"
    tls: bool
    tls_version: str  # "tls1.2" | "tls1.3" | "unknown"
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
            # the common line in one f-string
            return (
                f"at=info method={self.method} path={_quote(self.path)} host={self.host} "
                f"request_id={self.request_id} fwd={_quote(self.fwd)} dyno={self.dyno or ''} "
                f"connect={'' if self.connect_ms is None else f'{self.connect_ms}ms'} "
                f"service={'' if self.service_ms is None else f'{self.service_ms}ms'} "
                f"status={'' if self.status is None else self.status} "
                f"bytes={'' if self.bytes is None else self.bytes} protocol={self.protocol} "
                f"tls={'true' if self.tls else 'false'} tls_version={self.tls_version}"
            )
        parts: list[str] = []
        if self.code:
            h = H_CODES[self.code]
            if h.sock:
                parts.append(f"sock={h.sock}")
            parts.append(f"at={h.at}")
            parts.append(f"code={self.code}")
            parts.append(f"desc={_quote(h.desc)}")
            if self.cause is not None:
                parts.append(f"cause={_quote(self.cause)}")
            if self.agent is not None:
                parts.append(f"agent={_quote(self.agent)}")
        else:
            parts.append("at=info")
        parts.append(f"method={self.method}")
        parts.append(f"path={_quote(self.path)}")
        parts.append(f"host={self.host}")
        parts.append(f"request_id={self.request_id}")
        parts.append(f"fwd={_quote(self.fwd)}")
        parts.append(f"dyno={self.dyno or ''}")
        parts.append("connect=" + ("" if self.connect_ms is None else f"{self.connect_ms}ms"))
        parts.append("service=" + ("" if self.service_ms is None else f"{self.service_ms}ms"))
        parts.append("status=" + ("" if self.status is None else str(self.status)))
        parts.append("bytes=" + ("" if self.bytes is None else str(self.bytes)))
        parts.append(f"protocol={self.protocol}")
        parts.append(f"tls={'true' if self.tls else 'false'}")
        parts.append(f"tls_version={self.tls_version}")
        return " ".join(parts)
