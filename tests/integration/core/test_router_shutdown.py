"""`spruce up` stops promptly: idle router connections do not wait for the router's grace."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from support import start_platform


def _idle_connection(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n")
    got = b""
    while b"No such app" not in got:
        got += s.recv(65536)
    assert got.startswith(b"HTTP/1.1 404 ")
    return s


def test_up_stops_promptly_with_idle_keepalive_connections(tmp_path: Path) -> None:
    p = start_platform(tmp_path / "home")
    port = urlsplit(p.endpoints["router_http_url"]).port
    assert port is not None
    conns = [_idle_connection(port) for _ in range(3)]
    started = time.monotonic()
    assert p.stop(signal.SIGTERM) == 0
    took = time.monotonic() - started
    # the router's grace period (shutdown_grace, 10 s by default) is for requests in flight
    assert took < 5.0, took
    for s in conns:
        assert s.recv(65536) == b""
        s.close()
    assert "Traceback" not in p.log()
