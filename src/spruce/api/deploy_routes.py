"""Builds, sources, buildpack installations, app setups."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import views
from .core_routes import deployable_app, the_app
from .http import Ctx, endpoint, paginate


async def setups_create(ctx: Ctx) -> Any:
    setup = ctx.services.setups.create(ctx.actor, ctx.body)
    ctx.status = 201
    return views.setup_json(setup)


def setups_info(ctx: Ctx) -> Any:
    return views.setup_json(ctx.services.setups.get(ctx.actor, ctx.params["setup"]))


async def builds_create(ctx: Ctx) -> Any:
    app = await ctx.off_loop(deployable_app, ctx)
    builds = ctx.services.builds
    build = builds.create_pending(
        ctx.actor, app.id, ctx.field("source_blob"), ctx.field("buildpacks")
    )
    builds.submit(ctx.actor, build)
    ctx.status = 201
    return views.build_json(build)


def builds_list(ctx: Ctx) -> Any:
    rows = ctx.services.builds.list(the_app(ctx).id)
    return paginate(ctx, [views.build_json(b) for b in rows], ("id", "started_at"), "id")


def builds_info(ctx: Ctx) -> Any:
    return views.build_json(ctx.services.builds.get(the_app(ctx).id, ctx.params["build"]))


def sources_create(ctx: Ctx) -> Any:
    url = ctx.services.sources.new_upload()
    ctx.status = 201
    return {"source_blob": {"get_url": url, "put_url": url}}


def _installations(urls: list[str]) -> list[dict[str, Any]]:
    return [{"buildpack": {"url": u, "name": u}, "ordinal": i} for i, u in enumerate(urls)]


def buildpacks_list(ctx: Ctx) -> Any:
    return _installations(ctx.services.builds.buildpacks(the_app(ctx).id))


def buildpacks_replace(ctx: Ctx) -> Any:
    app = deployable_app(ctx)
    return _installations(ctx.services.builds.set_buildpacks(app.id, ctx.field("updates")))


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route(A + "/builds", endpoint(builds_create), methods=["POST"]),
        Route(A + "/builds", endpoint(builds_list), methods=["GET"]),
        Route(A + "/builds/{build}", endpoint(builds_info), methods=["GET"]),
        Route("/sources", endpoint(sources_create), methods=["POST"]),
        Route("/app-setups", endpoint(setups_create), methods=["POST"]),
        Route("/app-setups/{setup}", endpoint(setups_info), methods=["GET"]),
        Route("/apps/{app}/sources", endpoint(sources_create), methods=["POST"]),
        Route(A + "/buildpack-installations", endpoint(buildpacks_list), methods=["GET"]),
        Route(A + "/buildpack-installations", endpoint(buildpacks_replace), methods=["PUT"]),
    ]
