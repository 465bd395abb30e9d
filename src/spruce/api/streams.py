"""Unauthenticated, unguessable URLs: build and release output, source blobs, log sessions.

Like Heroku's, these URLs carry their own capability (a random UUID or session token), so
clients that do not send the API key (the Heroku CLI's log reader, `curl` of a put_url)
can use them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from spruce.services import Services
from spruce.services.errors import ServiceError


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def _follow(path: Path, running: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Yield a file's bytes as it grows, until `running()` is false and nothing is left."""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(65536)
            if chunk:
                yield chunk
                continue
            if not running():
                rest = f.read()
                if rest:
                    yield rest
                return
            await asyncio.sleep(0.1)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def build_output(request: Request) -> Response:
    builds = _services(request).builds
    build_id = _uuid_or_none(request.path_params["build"])
    path, _ = builds.output(build_id) if build_id else (None, False)
    if build_id is None or path is None or not path.exists():
        return PlainTextResponse("Build not found.\n", status_code=404)
    return StreamingResponse(
        _follow(path, lambda: builds.output(build_id)[1]), media_type="text/plain; charset=utf-8"
    )


async def release_output(request: Request) -> Response:
    releases = _services(request).releases
    rid = _uuid_or_none(request.path_params["release"])
    path, pending = releases.output(rid) if rid else (None, False)
    for _ in range(100):  # a pending release's phase opens its output within moments
        if rid is None or not pending or (path is not None and path.exists()):
            break
        await asyncio.sleep(0.1)
        path, pending = releases.output(rid)
    if rid is None or path is None or not path.exists():
        return PlainTextResponse("Release output not found.\n", status_code=404)
    return StreamingResponse(
        _follow(path, lambda: releases.output(rid)[1]), media_type="text/plain; charset=utf-8"
    )


async def source_blob(request: Request) -> Response:
    sources = _services(request).sources
    try:
        path = sources.path(request.path_params["source"])
        if request.method == "GET":
            if not path.exists():
                return PlainTextResponse("Source not found.\n", status_code=404)
            return FileResponse(path, media_type="application/octet-stream")
        await sources.receive(request.path_params["source"], request.stream())
    except ServiceError as e:
        return PlainTextResponse(e.message + "\n", status_code=e.status)
    return Response(status_code=200)


async def ca_certificate(request: Request) -> Response:
    """The internal CA's certificate (public): clients verify git, `run` and the router."""
    pem: str = request.app.state.ca_pem
    if not pem:
        return PlainTextResponse("No internal CA.\n", status_code=404)
    return Response(pem, media_type="application/x-pem-file")


def routes(log_sessions: object) -> list[BaseRoute]:
    """`log_sessions` is the log router's ASGI app for `/streams/logs/<token>`."""
    return [
        Route("/spruce/ca.pem", ca_certificate, methods=["GET"]),
        Route("/streams/builds/{build}", build_output, methods=["GET"]),
        Route("/streams/release-output/{release}", release_output, methods=["GET"]),
        Route("/streams/sources/{source}", source_blob, methods=["GET", "PUT"]),
        Mount("/streams/logs", app=log_sessions),  # type: ignore[arg-type]
    ]
