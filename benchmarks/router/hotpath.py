"""The router's HTTP/1.1 fast lane in one process, without sockets: instructions per request
that repeat exactly run to run (no event-loop batching, no scheduling of a shared machine).

    python benchmarks/router/hotpath.py [--n 20000] [--load h1_keepalive|h1_new_conn]
    python benchmarks/router/hotpath.py --callgrind [--n 2000]   # instructions per request

A client's request and the dyno's response are fed to the router's protocol callbacks through
stand-in transports (what the kernel would hand over); the router does all it does on a real
connection: admission, dyno choice from its pool, head rewriting, the log line (formatted as
the worker ships it). `--callgrind` runs this twice under valgrind (N and 2N requests) and
reports the difference per request, so start-up costs cancel out. Works against any checkout's
src/ (PYTHONPATH), to compare an older router with this one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REQUEST = b"GET /hello HTTP/1.1\r\nHost: bench.localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 14:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 6\r\n"
    b"Connection: keep-alive\r\n\r\nhello\n"
)


class Transport:
    """Just enough of an asyncio transport: writes are dropped, closing is immediate."""

    def __init__(self, protocol: Any, peer: tuple[str, int]) -> None:
        self.protocol = protocol
        self.peer = peer
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: list[bytes]) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 80)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        if not self.closing:
            self.closing = True
            self.protocol.connection_lost(None)


async def run(n: int, load: str) -> float:
    from spruce.router import control
    from spruce.router.http1_server import H1Client, tls_info
    from spruce.router.proxy import BackendConn
    from spruce.router.state import Router
    from spruce.router.stream import Stream
    from spruce.router.table import RouteTable
    from spruce.router.timers import RouterTimers

    shipped: list[str] = []

    def emit(app_id: str, line: str) -> None:  # what a worker does with each line
        shipped.append(control.log_entry(app_id, line, time.time_ns() // 1000))
        if len(shipped) >= 64:
            control.encode_log(shipped)
            shipped.clear()

    table = RouteTable(
        {
            "apps": {
                "bench": {
                    "id": "bench",
                    "hostnames": ["bench.localhost"],
                    "web_quantity": 1,
                    "dynos": [{"name": "web.1", "host": "127.0.0.1", "port": 9, "state": "up"}],
                }
            }
        }
    )
    router = Router(RouterTimers(), emit, None, table)
    loop = asyncio.get_running_loop()
    dyno_stream = Stream(loop=loop)
    dyno_stream.connection_made(Transport(dyno_stream, ("127.0.0.1", 9)))
    router.pool.give(BackendConn(dyno_stream, dyno_stream, table.apps["bench"].dynos[0]))
    request = REQUEST if load == "h1_keepalive" else REQUEST[:-2] + b"Connection: close\r\n\r\n"
    tasks: set[Any] = set()

    def spawn(coro: Any) -> Any:
        task = loop.create_task(coro)
        tasks.add(task)
        return task

    def connect() -> Stream:
        stream = Stream(loop=loop)
        stream.connection_made(Transport(stream, ("192.0.2.7", 40000)))
        client = H1Client(router, stream, stream, tls_info(stream), 80)
        client.park(spawn, lambda c: None)
        return stream

    client = connect()
    start = time.perf_counter()
    for _ in range(n):
        if load == "h1_new_conn":
            client = connect()
        client.data_received(request)
        dyno_stream.data_received(RESPONSE)
    elapsed = time.perf_counter() - start
    if router.fast_lane != n or tasks:
        raise SystemExit(f"not every request took the fast lane ({router.fast_lane} of {n})")
    return elapsed


def callgrind(n: int, load: str) -> int:
    """Instructions per request: runs with n and 2n requests, the difference over n."""
    totals = []
    for count in (n, 2 * n):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "cg.out"
            subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}",
                    sys.executable,
                    __file__,
                    "--n",
                    str(count),
                    "--load",
                    load,
                ],
                check=True,
                capture_output=True,
                env=os.environ,
            )
            m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
            assert m is not None
            totals.append(int(m.group(1)))
    return round((totals[1] - totals[0]) / n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--load", default="h1_keepalive", choices=("h1_keepalive", "h1_new_conn"))
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    if args.callgrind:
        print(f"{args.load} instructions/request {callgrind(args.n, args.load)}")
        return
    elapsed = asyncio.run(run(args.n, args.load))
    print(f"{args.load} {elapsed / args.n * 1e6:.2f} us/request ({args.n} requests)")


if __name__ == "__main__":
    main()
