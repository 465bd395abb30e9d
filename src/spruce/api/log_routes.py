"""Log sessions and log drains."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.routing import Route

from spruce.store.models import App, LogDrain

from .core_routes import the_app, urls
from .http import Ctx, endpoint, paginate
from .views import ts


def drain_json(d: LogDrain, app: App) -> dict[str, Any]:
    return {
        "addon": None,
        "app": {"id": app.id, "name": app.name},
        "created_at": ts(d.created_at),
        "id": d.id,
        "token": d.token,
        "updated_at": ts(d.updated_at),
        "url": d.url,
    }


async def log_session_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    token = ctx.services.logs.create_session(
        app.id, ctx.field("lines"), ctx.field("tail", False), ctx.field("source"), ctx.field("dyno")
    )
    ctx.status = 201
    now = ts(dt.datetime.now(dt.UTC))
    return {
        "created_at": now,
        "id": token[:36] if len(token) >= 36 else token,
        "logplex_url": f"{urls(ctx)['api_url'].rstrip('/')}/streams/logs/{token}",
        "updated_at": now,
    }


async def drains_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx, [drain_json(d, app) for d in ctx.services.logs.drains(app.id)], ("id", "url")
    )


async def drains_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    d = ctx.services.logs.add_drain(ctx.actor, app.id, ctx.field("url"))
    ctx.status = 201
    return drain_json(d, app)


async def drains_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return drain_json(ctx.services.logs.find_drain(app.id, ctx.params["drain"]), app)


async def drains_delete(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return drain_json(ctx.services.logs.remove_drain(ctx.actor, app.id, ctx.params["drain"]), app)


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route(A + "/log-sessions", endpoint(log_session_create), methods=["POST"]),
        Route(A + "/log-drains", endpoint(drains_list), methods=["GET"]),
        Route(A + "/log-drains", endpoint(drains_create), methods=["POST"]),
        Route(A + "/log-drains/{drain:path}", endpoint(drains_info), methods=["GET"]),
        Route(A + "/log-drains/{drain:path}", endpoint(drains_delete), methods=["DELETE"]),
    ]
