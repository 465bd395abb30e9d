"""Log sessions and log drains."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import views
from .core_routes import managed_app, the_app
from .http import Ctx, endpoint, paginate


async def log_session_create(ctx: Ctx) -> Any:
    session = ctx.services.logs.create_session(
        (await ctx.off_loop(the_app, ctx)).id,
        ctx.field("lines"),
        ctx.field("tail", False),
        ctx.field("source"),
        ctx.field("dyno") or ctx.field("dyno_name"),
    )
    ctx.status = 201
    now = views.ts(session.created_at)
    return {
        "created_at": now,
        "id": session.id,
        "logplex_url": session.logplex_url,
        "updated_at": now,
    }


def drains_list(ctx: Ctx) -> Any:
    items = [views.drain_json(d) for d in ctx.services.logs.drains(the_app(ctx).id)]
    return paginate(ctx, items, ("id", "url"))


async def drains_create(ctx: Ctx) -> Any:
    d = ctx.services.logs.add_drain(
        ctx.actor, (await ctx.off_loop(managed_app, ctx)).id, ctx.field("url")
    )
    ctx.status = 201
    return views.drain_json(d)


def drains_info(ctx: Ctx) -> Any:
    return views.drain_json(ctx.services.logs.find_drain(the_app(ctx).id, ctx.params["drain"]))


async def drains_delete(ctx: Ctx) -> Any:
    d = ctx.services.logs.remove_drain(
        ctx.actor, (await ctx.off_loop(managed_app, ctx)).id, ctx.params["drain"]
    )
    return views.drain_json(d)


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route(A + "/log-sessions", endpoint(log_session_create), methods=["POST"]),
        Route(A + "/log-drains", endpoint(drains_list), methods=["GET"]),
        Route(A + "/log-drains", endpoint(drains_create), methods=["POST"]),
        Route(A + "/log-drains/{drain:path}", endpoint(drains_info), methods=["GET"]),
        Route(A + "/log-drains/{drain:path}", endpoint(drains_delete), methods=["DELETE"]),
    ]
