"""Dynos: list, info, restart, stop, one-off runs."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import views
from .core_routes import deployable_app, operable_app, the_app
from .http import Ctx, endpoint, paginate


async def dynos_list(ctx: Ctx) -> Any:
    app = await ctx.off_loop(the_app, ctx)
    dynos = ctx.services.dynos.list(app)
    return paginate(ctx, [views.dyno_json(d, app) for d in dynos], ("id", "name"), "name")


async def dynos_info(ctx: Ctx) -> Any:
    app = await ctx.off_loop(the_app, ctx)
    return views.dyno_json(ctx.services.dynos.get(app, ctx.params["dyno"]), app)


async def dynos_create(ctx: Ctx) -> Any:
    app = await ctx.off_loop(deployable_app, ctx)  # one-off dynos are deploy's, as on Heroku
    attach = bool(ctx.field("attach", False))
    tty = attach and not bool(ctx.field("force_no_tty", False))
    d = await ctx.services.dynos.run(
        ctx.actor, app, ctx.field("command"), ctx.field("env"), ctx.field("size"), attach, tty
    )
    ctx.status = 201
    return views.dyno_json(d, app)


async def dynos_restart_all(ctx: Ctx) -> Any:
    await ctx.services.dynos.restart(ctx.actor, await ctx.off_loop(operable_app, ctx))
    return {}


async def dynos_restart_one(ctx: Ctx) -> Any:
    await ctx.services.dynos.restart_named(
        ctx.actor, await ctx.off_loop(operable_app, ctx), ctx.params["dyno"]
    )
    return {}


async def formation_restart(ctx: Ctx) -> Any:
    await ctx.services.dynos.restart(
        ctx.actor, await ctx.off_loop(operable_app, ctx), process_type=ctx.params["type"]
    )
    return {}


async def dynos_stop(ctx: Ctx) -> Any:
    await ctx.services.dynos.stop_named(
        ctx.actor, await ctx.off_loop(operable_app, ctx), ctx.params["dyno"]
    )
    return {}


async def formation_stop(ctx: Ctx) -> Any:
    await ctx.services.dynos.stop(
        ctx.actor, await ctx.off_loop(operable_app, ctx), process_type=ctx.params["type"]
    )
    return {}


async def dynos_run_inside(ctx: Ctx) -> Any:
    app = await ctx.off_loop(operable_app, ctx)
    d = await ctx.services.dynos.run_inside(
        ctx.actor, app, ctx.params["dyno"], ctx.field("command")
    )
    ctx.status = 201
    return views.dyno_json(d, app)


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route(A + "/dynos", endpoint(dynos_list), methods=["GET"]),
        Route(A + "/dynos", endpoint(dynos_create), methods=["POST"]),
        Route(A + "/dynos", endpoint(dynos_restart_all), methods=["DELETE"]),
        Route(A + "/dynos/{dyno}", endpoint(dynos_info), methods=["GET"]),
        Route(A + "/dynos/{dyno}", endpoint(dynos_restart_one), methods=["DELETE"]),
        # Heroku's CLI 11 run:inside (Accept 3.run-inside)
        Route(A + "/dynos/{dyno}", endpoint(dynos_run_inside), methods=["POST"]),
        Route(A + "/dynos/{dyno}/actions/stop", endpoint(dynos_stop), methods=["POST"]),
        Route(A + "/dynos/{dyno}/actions/run-inside", endpoint(dynos_run_inside), methods=["POST"]),
        Route(A + "/formations/{type}", endpoint(formation_restart), methods=["DELETE"]),
        Route(A + "/formations/{type}/actions/stop", endpoint(formation_stop), methods=["POST"]),
    ]
