"""An API read worker (spruce up --api-workers N): one of N processes that accept the API's
connections, answer store-only reads themselves and hand everything else to the main process.

One process answering the API caps at what one core does (1-2 ms of CPU a request). The
reads clients make most (apps, config vars, releases, formation) need only the store, so
workers answer them with the same handlers the main process runs, over the same store;
writes and what needs the main process's memory (dynos, logs, the router, builds, streams)
go to the main process over its unix socket (api/forward.py), so there is one writer and a
write is visible to the next read at once. Rate limits and key revocation are shared
through a mapped file (services/shared.py).

Run as `python -m spruce.api.read_worker` by api/workers.py, with its settings as JSON in
$SPRUCE_API_WORKER and the listening socket inherited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from spruce.services.reads import ReadServices
from spruce.services.settings import PlatformAddresses

from . import core_routes as core
from .forward import Forwarder
from .http import NO_COUNTER, QueryCounter, endpoint

WORKER_HEADER = b"spruce-api-worker"
"""Names the process that answered a read itself (its pid); forwarded answers lack it."""

# The GETs a worker answers: each needs the store and nothing of the main process's memory.
READS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("/account", core.account_info),
    ("/users/~", core.account_info),
    ("/account/rate-limits", core.rate_limits),
    ("/apps", core.apps_list),
    ("/users/{user}/apps", core.apps_list),
    ("/apps/{app}", core.apps_info),
    ("/apps/{app}/config-vars", core.config_get),
    ("/apps/{app}/releases", core.releases_list),
    ("/apps/{app}/releases/{release}", core.releases_info),
    ("/apps/{app}/releases/{release}/config-vars", core.release_config),
    ("/apps/{app}/formation", core.formation_list),
    ("/apps/{app}/formation/{formation}", core.formation_info),
)


def read_routes() -> list[Route]:
    return [Route(path, endpoint(handler), methods=["GET"]) for path, handler in READS]


def answers_here(routes: list[Route], scope: dict[str, Any]) -> bool:
    """The routing decision: a GET (not HEAD) of a path a worker serves; all else forwards."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


class ReadWorker:
    """ASGI: reads answered here (tagged with this pid), the rest forwarded."""

    def __init__(
        self,
        services: ReadServices,
        forward: Forwarder,
        query_counter: QueryCounter = NO_COUNTER,
    ) -> None:
        from .app import _http_error, _server_error

        self.routes = read_routes()
        self.reads = Starlette(
            routes=self.routes,
            exception_handlers={HTTPException: _http_error, Exception: _server_error},
        )
        self.reads.state.services = services
        self.reads.state.query_counter = query_counter
        self.forward = forward
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not answers_here(self.routes, scope):
            await self.forward(scope, receive, send)
            return

        async def tagged(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (WORKER_HEADER, self.pid)]
            await send(message)

        await self.reads(scope, receive, tagged)


def _die_with_parent() -> None:
    """A worker outliving `spruce up` (killed with SIGKILL) would hold the API's port."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main() -> None:
    import uvicorn

    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return  # the parent died before the wish was registered
    config = json.loads(os.environ.pop("SPRUCE_API_WORKER"))
    debug_queries = bool(os.environ.get("SPRUCE_DEBUG_QUERIES"))
    services = ReadServices.open(
        config["database_url"],
        PlatformAddresses(**config["addresses"]),
        Path(config["shared_limits"]),
        int(config["rate_limit"]),
        count_queries=debug_queries,
    )
    counter: QueryCounter = services.store.queries if debug_queries else NO_COUNTER
    app = ReadWorker(services, Forwarder(config["main_socket"]), counter)
    sock = socket.socket(fileno=int(config["fd"]))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=65,  # as the main process's API (platform.py)
        )
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    # uvicorn stops on SIGTERM (spruce up's stop) and SIGINT, finishing requests in flight.
    asyncio.run(server.serve(sockets=[sock]))
    services.store.dispose()


if __name__ == "__main__":
    main()
