"""Telemetry drains (v6 `telemetry-drain`): where a Fir app's OpenTelemetry signals go."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.errors import NotFound
from spruce.services.telemetry import TelemetryDrainView

from . import views
from .http import Ctx, endpoint, paginate


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
    raise NotFound("Couldn't find that space.")


def info(ctx: Ctx) -> Any:
    return drain_json(ctx.services.telemetry.get(ctx.actor, ctx.params["drain"]))


def update(ctx: Ctx) -> Any:
    return drain_json(ctx.services.telemetry.update(ctx.actor, ctx.params["drain"], ctx.body))


def delete(ctx: Ctx) -> Any:
    return drain_json(ctx.services.telemetry.delete(ctx.actor, ctx.params["drain"]))


def routes() -> list[Route]:
    one = "/telemetry-drains/{drain}"
    return [
        Route("/telemetry-drains", endpoint(create), methods=["POST"]),
        Route("/apps/{app}/telemetry-drains", endpoint(app_list), methods=["GET"]),
        Route("/spaces/{space}/telemetry-drains", endpoint(space_list), methods=["GET"]),
        Route(one, endpoint(info), methods=["GET"]),
        Route(one, endpoint(update), methods=["PATCH"]),
        Route(one, endpoint(delete), methods=["DELETE"]),
    ]
