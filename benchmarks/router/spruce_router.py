"""Run Spruce's router (RouterSupervisor) for the benchmark: one app routed to one backend.

python spruce_router.py WORKERS HTTP_PORT HTTPS_PORT BACKEND_PORT CERT_PEM KEY_PEM
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from spruce.events import PrintLogSink
from spruce.router.supervisor import RouterSupervisor


class NullSink(PrintLogSink):
    def emit(self, app_id, source, process, message, ts=None):  # type: ignore[no-untyped-def]
        pass  # log lines are produced (and shipped to this process) but not kept


async def main() -> None:
    workers, http_port, https_port, backend_port = (int(x) for x in sys.argv[1:5])
    cert = {
        "id": "bench",
        "hostnames": ["bench.localhost"],
        "cert_pem": Path(sys.argv[5]).read_text(),
        "key_pem": Path(sys.argv[6]).read_text(),
    }
    snapshot = {
        "router_name": "spruce",
        "apps": {
            "bench": {
                "id": "bench",
                "name": "bench",
                "hostnames": ["bench.localhost", "127.0.0.1"],
                "web_quantity": 1,
                "dynos": [
                    {"name": "web.1", "host": "127.0.0.1", "port": backend_port, "state": "up"}
                ],
            }
        },
        "certificates": [cert],
        "default_certificate": cert,
    }
    with tempfile.TemporaryDirectory() as run_dir:
        sup = RouterSupervisor(
            [("127.0.0.1", http_port)],
            [("127.0.0.1", https_port)],
            workers,
            NullSink(),
            run_dir=Path(run_dir),
            snapshot=snapshot,
        )
        await sup.start()
        print("ready", *sup.worker_pids, flush=True)  # (run.py measures the workers)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sup.stop()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
