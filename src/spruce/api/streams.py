"""Unauthenticated, unguessable URLs: build output, source blobs, log sessions.

Like Heroku's, these URLs carry their own capability (a random UUID or session token), so
clients that do not send the API key (the Heroku CLI's log reader, `curl` of a put_url)
can use them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from spruce.services import Services

MAX_BLOB = 500 * 1024 * 1024


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def _follow(path: Path, done: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Yield a file's bytes as it grows, until `done()` and nothing more was written."""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(65536)
            if chunk:
                yield chunk
                continue
            if done():
                rest = f.read()
                if rest:
                    yield rest
                return
            await asyncio.sleep(0.1)


async def build_output(request: Request) -> Response:
    services: Services = request.app.state.services
    build_id = _uuid_or_none(request.path_params["build"])
    build = services.builds.find(build_id) if build_id and services.builds else None
    if build is None or not build.output_path or not os.path.exists(build.output_path):
        return PlainTextResponse("Build not found.\n", status_code=404)
    assert services.builds is not None

    def done() -> bool:
        b = services.builds.find(build.id)  # type: ignore[union-attr]
        return b is None or b.status != "pending"

    return StreamingResponse(
        _follow(Path(build.output_path), done), media_type="text/plain; charset=utf-8"
    )


async def release_output(request: Request) -> Response:
    services: Services = request.app.state.services
    rid = _uuid_or_none(request.path_params["release"])
    if rid is None:
        return PlainTextResponse("Release not found.\n", status_code=404)
    from spruce.store.models import Release

    with services.store.session() as s:
        rel = s.get(Release, rid)
    if rel is None or not rel.output_path or not os.path.exists(rel.output_path):
        return PlainTextResponse("Release output not found.\n", status_code=404)

    def done() -> bool:
        with services.store.session() as s:
            r = s.get(Release, rid)
            return r is None or r.status != "pending"

    return StreamingResponse(
        _follow(Path(rel.output_path), done), media_type="text/plain; charset=utf-8"
    )


async def source_blob(request: Request) -> Response:
    services: Services = request.app.state.services
    if services.builds is None:
        return PlainTextResponse("Not available.\n", status_code=404)
    sid = _uuid_or_none(request.path_params["source"])
    if sid is None:
        return PlainTextResponse("Source not found.\n", status_code=404)
    path = services.builds.source_path(sid)
    if request.method == "GET":
        if not path.exists():
            return PlainTextResponse("Source not found.\n", status_code=404)
        return FileResponse(path, media_type="application/octet-stream")
    tmp = path.with_suffix(".part")
    size = 0
    with open(tmp, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BLOB:
                f.close()
                tmp.unlink()
                return PlainTextResponse(
                    "The source blob is larger than 500 MB.\n", status_code=413
                )
            f.write(chunk)
    tmp.replace(path)
    return Response(status_code=200)


async def ca_certificate(request: Request) -> Response:
    """The internal CA's certificate (public): clients verify git, `run` and the router."""
    pem = request.app.state.urls.get("ca_pem", "")
    if not pem:
        return PlainTextResponse("No internal CA.\n", status_code=404)
    return Response(pem, media_type="application/x-pem-file")


def routes(services: Services) -> list[BaseRoute]:
    return [
        Route("/spruce/ca.pem", ca_certificate, methods=["GET"]),
        Route("/streams/builds/{build}", build_output, methods=["GET"]),
        Route("/streams/release-output/{release}", release_output, methods=["GET"]),
        Route("/streams/sources/{source}", source_blob, methods=["GET", "PUT"]),
        Mount("/streams/logs", app=services.logs.router.asgi_app),
    ]
