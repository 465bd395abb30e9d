"""The inference API over HTTP: Starlette routes in the spec's shapes, SSE, the MCP toolkit.

Chat streams are plain OpenAI SSE (`data: <chunk>` ... `data: [DONE]`): OpenAI clients treat
an `event:` line as a different kind of event. Agent streams carry `event: message` and end
with `event: done`, as Heroku's agents endpoint does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import chat, embeddings
from .agents import AgentRunner
from .errors import InferenceError, invalid
from .link import KeyGrant
from .mcp_bridge import McpHub
from .service import InferenceService, Model

log = logging.getLogger(__name__)
MAX_BODY = 8 * 1024 * 1024
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def error_response(e: InferenceError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


async def read_json(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise InferenceError(413, f"the request body is larger than {MAX_BODY} bytes")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY:
            raise InferenceError(413, f"the request body is larger than {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise invalid("the request body is not valid JSON") from None


def sse(obj: Any, event: str | None = None) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


async def _guarded(
    events: AsyncIterator[dict[str, Any]], encode: Callable[[dict[str, Any]], bytes], done: bytes
) -> AsyncIterator[bytes]:
    """Encode events; an error after the first byte becomes an error event, not a cut."""
    try:
        async for ev in events:
            yield encode(ev)
        yield done
    except InferenceError as e:
        yield encode(e.body())
        yield done
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]


async def _first(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Start the stream before answering, so errors up to the first event get a status."""
    first = await events.__anext__()

    async def rest() -> AsyncIterator[dict[str, Any]]:
        yield first
        try:
            async for ev in events:
                yield ev
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]

    return rest()


def build_app(service: InferenceService, hub: McpHub, agents: AgentRunner) -> Starlette:
    Handler = Callable[[Request], Awaitable[Response]]

    def api(fn: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(request)
            except InferenceError as e:
                return error_response(e)

        return wrapped

    @api
    async def available_models(request: Request) -> Response:
        return JSONResponse(
            [
                {"model_id": m.spec.id, "type": [m.spec.type], "regions": list(m.spec.regions)}
                for m in service.models.values()
            ]
        )

    @api
    async def model_info(request: Request) -> Response:
        grant = await service.authenticate(request.headers.get("authorization"))
        if request.path_params["id"] not in (grant.addon_id, grant.addon_name):
            raise InferenceError(404, "model resource not found")
        model = service.models.get(grant.model_id or "")
        return JSONResponse(
            {
                "model_id": grant.model_id,
                "model_resource_id": grant.addon_id,
                "app_id": grant.app_id,
                "created": grant.created_at,
                "ready": "Yes" if model is not None and model.ready else "No",
                "avg_performance": model.stats.performance() if model else "n/a",
            }
        )

    async def keyed(request: Request, kind: str) -> tuple[KeyGrant, Any, Model]:
        """The caller's grant, the JSON body and the model it may use for `kind`."""
        grant = await service.authenticate(request.headers.get("authorization"))
        body = await read_json(request)
        requested = body.get("model") if isinstance(body, dict) else None
        return grant, body, service.model_for(grant, requested, kind)

    async def started(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        try:
            return await _first(events)
        except StopAsyncIteration:
            raise InferenceError(500, "the model sent no answer") from None

    @api
    async def chat_completions(request: Request) -> Response:
        grant, body, model = await keyed(request, "text-to-text")
        req = chat.validate(body, model.spec.max_tokens)
        headers = service.admit(grant)
        if not req.get("stream"):
            return JSONResponse(await service.complete(grant, model, req), headers=headers)
        stream = _guarded(
            await started(service.stream(grant, model, req)), sse, b"data: [DONE]\n\n"
        )
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )

    @api
    async def embeddings_route(request: Request) -> Response:
        grant, body, model = await keyed(request, "text-to-embedding")
        texts, etype, fmt = embeddings.validate(body)
        headers = service.admit(grant)
        vectors, tokens = await service.embed(grant, model, texts)
        return JSONResponse(
            embeddings.response(vectors, tokens, model.spec.id, etype, fmt), headers=headers
        )

    @api
    async def images(request: Request) -> Response:
        grant = await service.authenticate(request.headers.get("authorization"))
        body = await read_json(request)
        if not isinstance(body, dict):
            raise invalid("the request body must be a JSON object")
        model = service.image_model(grant, body.get("model"))
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 10000:
            raise invalid("prompt is required: a string of at most 10000 characters")
        headers = service.admit(grant)
        result = await service.generate_image(grant, model, body)
        return JSONResponse(result, headers=headers)

    @api
    async def mcp_servers(request: Request) -> Response:
        grant = await service.authenticate(request.headers.get("authorization"))
        return JSONResponse(await hub.listing(grant))

    @api
    async def agents_route(request: Request) -> Response:
        grant, body, model = await keyed(request, "text-to-text")
        plan = agents.plan(grant, model, body)
        headers = service.admit(grant)
        # the first event (a model answer) is awaited: errors before it get a status
        stream = _guarded(
            await started(agents.run(plan)),
            lambda ev: sse(ev, "message"),
            b"event: done\ndata: [DONE]\n\n",
        )
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )

    @api
    async def status(request: Request) -> Response:
        grant = await service.authenticate(request.headers.get("authorization"))
        return JSONResponse(
            {
                "uptime_seconds": int(time.time() - service.started_at),
                "models": {
                    mid: {
                        **m.queue.stats(),
                        "ready": m.ready,
                        "served": m.queue.served_total,
                        "yours": m.queue.app_stats(grant.app_id),
                    }
                    for mid, m in service.models.items()
                },
            }
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = "not found" if status == 404 else "method not allowed"
        return error_response(InferenceError(status, message))

    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("inference request failed", exc_info=exc)
        return error_response(InferenceError(500, "internal error"))

    mcp_app = hub.asgi_app(service)

    class McpEndpoint:  # a class: Starlette routes an ASGI app, not a request handler
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await mcp_app(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with hub.running():
            yield

    return Starlette(
        routes=[
            Route("/available-models", available_models, methods=["GET"]),
            Route("/models/{id}", model_info, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings_route, methods=["POST"]),
            Route("/v1/images/generations", images, methods=["POST"]),
            Route("/v1/mcp/servers", mcp_servers, methods=["GET"]),
            Route("/v1/agents/heroku", agents_route, methods=["POST"]),
            Route("/spruce/status", status, methods=["GET"]),
            Route("/mcp", McpEndpoint(), methods=["GET", "POST", "DELETE"]),
        ],
        exception_handlers={404: not_found, 405: not_found, 500: crashed},
        lifespan=lifespan,
    )
