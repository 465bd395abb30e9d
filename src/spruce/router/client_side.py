"""What an exchange needs from the client side (an HTTP/1.1 connection or an HTTP/2 stream),
and the exceptions that carry failures between the two."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

from .errors import Code, reason
from .logline import TLSVersion, Wire
from .proto.http1 import ProtocolError
from .proxy import BackendConn
from .state import ConnectionApps


class TLSInfo(NamedTuple):
    """What a client connection's TLS layer tells (plain HTTP: not tls, version unknown)."""

    tls: bool
    version: TLSVersion
    sni: str | None  # the SNI name the client sent


PLAIN = TLSInfo(False, TLSVersion.UNKNOWN, None)


class ClientGone(Exception):
    """The client closed or broke its connection (H27)."""


class ClientIdle(Exception):
    """The client went silent mid-request (H28)."""


class BadRequestBody(Exception):
    """The client's body framing is broken (bad chunk size...): 400, connection closed."""


class HError(Exception):
    """The exchange ends with H code `code` (what the line records besides)."""

    def __init__(
        self,
        code: Code,
        connect_ms: int | None = None,
        service_ms: int | None = None,
        dyno: str | None = None,
        cause: str | None = None,
    ):
        super().__init__(code)
        self.cause = cause
        self.code = code
        self.dyno = dyno
        self.connect_ms = connect_ms
        self.service_ms = service_ms


class BackendBroken(Exception):
    """The dyno connection failed; `got_bytes` tells whether any response byte came."""

    def __init__(self, got_bytes: bool) -> None:
        super().__init__("backend broken")
        self.got_bytes = got_bytes


class ClientSide(ABC):
    """What the exchange needs from the client connection."""

    protocol = Wire.HTTP1
    via = "1.1"
    tls = False
    tls_version = TLSVersion.UNKNOWN
    sni: str | None = None
    client_ip = ""
    local_port = 0
    keep_alive = True
    conn_apps: ConnectionApps | None = None  # what the connection counts against (H22)

    @property
    @abstractmethod
    def response_started(self) -> bool:
        """Whether anything of the response was composed (then a failure can only cut it)."""

    @abstractmethod
    async def read_body(self) -> bytes:
        """The next piece of the request body (b"" at its end)."""

    @abstractmethod
    async def send_continue(self) -> None:
        """Answer `Expect: 100-continue`."""

    @abstractmethod
    async def send_head(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        length: int | None,
        no_body: bool = False,
    ) -> None:
        """The response head; `length` None: the body's length is not known yet."""

    @abstractmethod
    async def send_data(self, data: bytes) -> None:
        """A piece of the response body."""

    async def send_whole(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """A complete response whose body is at hand (Content-Length framing)."""
        await self.send_head(status, reason, headers, len(body))
        await self.send_data(body)
        await self.end()

    @abstractmethod
    async def end(self) -> None:
        """The response is complete."""

    @abstractmethod
    def abort(self) -> None:
        """Cut the connection (or stream): the response cannot be completed."""

    async def tunnel(self, backend: BackendConn, leftover: bytes, idle: float) -> None:
        raise ProtocolError("upgrade not supported on this protocol")


async def send_simple(
    client: ClientSide,
    status: int,
    body: bytes,
    ctype: str = "text/html; charset=utf-8",
    close: bool = False,
) -> int:
    headers = [
        ("Content-Type", ctype),
        ("Cache-Control", "no-cache, no-store"),
    ]
    if close:
        client.keep_alive = False
    await client.send_head(status, reason(status), headers, len(body))
    await client.send_data(body)
    await client.end()
    return len(body)
