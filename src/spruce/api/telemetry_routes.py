"""Telemetry drains (v6 `telemetry-drain`): where a Fir app's OpenTelemetry signals go."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spruce.services import Services
from spruce.services.errors import ServiceError
from spruce.services.telemetry import TelemetryDrainView

from . import views
from .http import Ctx, endpoint, error_response, in_thread, paginate

MAX_OTLP_BODY = 8 << 20


def drain_json(d: TelemetryDrainView) -> dict[str, Any]:
    return {
        "created_at": views.ts(d.created_at),
        "exporter": {"endpoint": d.endpoint, "headers": d.headers, "type": d.exporter_type},
        "id": d.id,
        "owner": {"id": d.owner.id, "type": d.owner_type},
        "signals": list(d.signals),
        "updated_at": views.ts(d.updated_at),
    }


def create(ctx: Ctx) -> Any:
    d = ctx.services.telemetry.create(ctx.actor, ctx.body)
    ctx.status = 201
    return drain_json(d)


def app_list(ctx: Ctx) -> Any:
    items = [drain_json(d) for d in ctx.services.telemetry.for_app(ctx.actor, ctx.params["app"])]
    return paginate(ctx, items)


def space_list(ctx: Ctx) -> Any:
    drains = ctx.services.telemetry.for_space(ctx.actor, ctx.params["space"])
    return paginate(ctx, [drain_json(d) for d in drains])


def info(ctx: Ctx) -> Any:
    return drain_json(ctx.services.telemetry.get(ctx.actor, ctx.params["drain"]))


def update(ctx: Ctx) -> Any:
    return drain_json(ctx.services.telemetry.update(ctx.actor, ctx.params["drain"], ctx.body))


def delete(ctx: Ctx) -> Any:
    return drain_json(ctx.services.telemetry.delete(ctx.actor, ctx.params["drain"]))


async def otlp_receive(request: Request) -> Response:
    """The platform's OTLP/HTTP endpoint for dynos (OTEL_EXPORTER_OTLP_ENDPOINT): the path
    carries the app and a token only the platform can make, so no API key is needed."""
    services: Services = request.app.state.services
    body = await request.body()
    if len(body) > MAX_OTLP_BODY:
        return error_response(413, "bad_request", "The OTLP request is too large.")
    if request.headers.get("content-encoding", "").lower() == "gzip":
        import gzip

        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return error_response(400, "bad_request", "The OTLP request is not valid gzip.")
    p = request.path_params
    try:
        await in_thread(
            services.telemetry.receive,
            p["app_id"],
            p["token"],
            p["signal"],
            body,
            request.headers.get("content-type", "application/x-protobuf"),
        )
    except ServiceError as e:
        return error_response(e.status, e.id, e.message)
    if request.headers.get("content-type", "").startswith("application/json"):
        return JSONResponse({})
    return Response(b"", media_type="application/x-protobuf")


def routes() -> list[Route]:
    one = "/telemetry-drains/{drain}"
    return [
        Route("/telemetry-drains", endpoint(create), methods=["POST"]),
        Route("/apps/{app}/telemetry-drains", endpoint(app_list), methods=["GET"]),
        Route("/spaces/{space}/telemetry-drains", endpoint(space_list), methods=["GET"]),
        Route(one, endpoint(info), methods=["GET"]),
        Route(one, endpoint(update), methods=["PATCH"]),
        Route(one, endpoint(delete), methods=["DELETE"]),
        Route("/spruce/otlp/{app_id}/{token}/v1/{signal}", otlp_receive, methods=["POST"]),
    ]
