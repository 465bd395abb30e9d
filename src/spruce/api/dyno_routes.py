"""Dynos: list, info, restart, stop, one-off runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.routing import Route

from spruce.dynos import DynoInfo
from spruce.services.errors import Unavailable
from spruce.store.models import App

from .core_routes import the_app
from .http import Ctx, endpoint, paginate
from .views import ts


def _t(epoch: float) -> str | None:
    return ts(dt.datetime.fromtimestamp(epoch, dt.UTC))


def dyno_json(d: DynoInfo, app: App) -> dict[str, Any]:
    return {
        "app": {"id": app.id, "name": app.name},
        "attach_url": d.attach_url,
        "command": d.command,
        "created_at": _t(d.created_at),
        "id": d.id,
        "name": d.name,
        "release": {"id": d.release_id, "version": d.release_version},
        "size": d.size,
        "state": d.state,
        "type": d.type,
        "updated_at": _t(d.updated_at),
    }


def dynos_of(ctx: Ctx) -> Any:
    if ctx.services.dynos is None:
        raise Unavailable("The dyno manager is not running.")
    return ctx.services.dynos


async def dynos_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx, [dyno_json(d, app) for d in dynos_of(ctx).list(app)], ("id", "name"), "name"
    )


async def dynos_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return dyno_json(dynos_of(ctx).get(app, ctx.params["dyno"]), app)


async def dynos_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    attach = bool(ctx.field("attach", False))
    tty = attach and not bool(ctx.field("force_no_tty", False))
    d = await dynos_of(ctx).run(
        ctx.actor, app, ctx.field("command"), ctx.field("env"), ctx.field("size"), attach, tty
    )
    ctx.status = 201
    return dyno_json(d, app)


async def dynos_restart_all(ctx: Ctx) -> Any:
    app = the_app(ctx)
    await dynos_of(ctx).restart(ctx.actor, app)
    return {}


async def dynos_restart_one(ctx: Ctx) -> Any:
    app = the_app(ctx)
    await dynos_of(ctx).restart(ctx.actor, app, dyno_name=ctx.params["dyno"])
    return {}


async def formation_restart(ctx: Ctx) -> Any:
    app = the_app(ctx)
    await dynos_of(ctx).restart(ctx.actor, app, process_type=ctx.params["type"])
    return {}


async def dynos_stop(ctx: Ctx) -> Any:
    app = the_app(ctx)
    ident = ctx.params["dyno"]
    dynos = dynos_of(ctx)
    if "." in ident or len(ident) == 36:
        await dynos.stop(ctx.actor, app, dyno_name=dynos.get(app, ident).name)
    else:
        await dynos.stop(ctx.actor, app, process_type=ident)
    return {}


async def formation_stop(ctx: Ctx) -> Any:
    app = the_app(ctx)
    await dynos_of(ctx).stop(ctx.actor, app, process_type=ctx.params["type"])
    return {}


async def dynos_run_inside(ctx: Ctx) -> Any:
    app = the_app(ctx)
    d = await dynos_of(ctx).run_inside(ctx.actor, app, ctx.params["dyno"], ctx.field("command"))
    ctx.status = 201
    return dyno_json(d, app)


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route(A + "/dynos", endpoint(dynos_list), methods=["GET"]),
        Route(A + "/dynos", endpoint(dynos_create), methods=["POST"]),
        Route(A + "/dynos", endpoint(dynos_restart_all), methods=["DELETE"]),
        Route(A + "/dynos/{dyno}", endpoint(dynos_info), methods=["GET"]),
        Route(A + "/dynos/{dyno}", endpoint(dynos_restart_one), methods=["DELETE"]),
        Route(A + "/dynos/{dyno}/actions/stop", endpoint(dynos_stop), methods=["POST"]),
        Route(A + "/dynos/{dyno}/actions/run-inside", endpoint(dynos_run_inside), methods=["POST"]),
        Route(A + "/formations/{type}", endpoint(formation_restart), methods=["DELETE"]),
        Route(A + "/formations/{type}/actions/stop", endpoint(formation_stop), methods=["POST"]),
    ]
