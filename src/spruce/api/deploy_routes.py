"""Builds, sources, buildpack installations."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.routing import Route

from spruce.services.builds import Builds
from spruce.services.errors import InvalidParams, Unavailable
from spruce.store.models import App, Build

from .core_routes import the_app, urls
from .http import Ctx, endpoint, paginate
from .views import ts

log = logging.getLogger(__name__)


def builds_of(ctx: Ctx) -> Builds:
    if ctx.services.builds is None:
        raise Unavailable("Builds are not available on this platform.")
    return ctx.services.builds


def local_source_for(ctx: Ctx) -> Callable[[str], Path | None]:
    """Source blob URLs of this platform (from POST /sources) resolve to their local file."""
    builds = builds_of(ctx)
    prefix = f"{urls(ctx)['api_url'].rstrip('/')}/streams/sources/"

    def local_source(url: str) -> Path | None:
        if url.startswith(prefix):
            path = builds.source_path(url[len(prefix) :].split("?")[0])
            if not path.exists():
                raise InvalidParams("The source blob was never uploaded.")
            return path
        return None

    return local_source


async def setups_create(ctx: Ctx) -> Any:
    setup, _ = ctx.services.setups.create(ctx.actor, ctx.body, local_source_for(ctx))
    ctx.status = 201
    return setup_json(ctx, ctx.services.setups.get(ctx.actor, setup.id))


async def setups_info(ctx: Ctx) -> Any:
    return setup_json(ctx, ctx.services.setups.get(ctx.actor, ctx.params["setup"]))


def setup_json(ctx: Ctx, setup: Any) -> dict[str, Any]:
    app = ctx.services.apps.get_internal(setup.app_id) if setup.app_id else None
    build = None
    if setup.build_id and ctx.services.builds is not None:
        b = ctx.services.builds.find(setup.build_id)
        if b is not None:
            build = {
                "id": b.id,
                "status": b.status,
                "output_stream_url": f"{urls(ctx)['api_url'].rstrip('/')}/streams/builds/{b.id}",
            }
    postdeploy = None
    if setup.postdeploy_exit_code is not None or setup.postdeploy_output:
        postdeploy = {
            "exit_code": setup.postdeploy_exit_code,
            "output": setup.postdeploy_output or "",
        }
    return {
        "app": {"id": app.id, "name": app.name} if app else None,
        "build": build,
        "created_at": ts(setup.created_at),
        "failure_message": setup.failure_message,
        "id": setup.id,
        "manifest_errors": list(setup.manifest_errors or []),
        "postdeploy": postdeploy,
        "resolved_success_url": setup.resolved_success_url,
        "status": setup.status,
        "updated_at": ts(setup.updated_at),
    }


def buildpack_json(url: str) -> dict[str, Any]:
    return {"url": url, "name": url}


def build_json(ctx: Ctx, b: Build, app: App) -> dict[str, Any]:
    user = None
    if b.user_id:
        try:
            user = ctx.services.accounts.get(b.user_id)
        except Exception:
            user = None
    blob = b.source_blob or {}
    return {
        "app": {"id": app.id},
        "buildpacks": [buildpack_json(u) for u in (b.buildpacks or [])] or None,
        "created_at": ts(b.created_at),
        "id": b.id,
        "output_stream_url": f"{urls(ctx)['api_url'].rstrip('/')}/streams/builds/{b.id}",
        "source_blob": {
            "checksum": blob.get("checksum"),
            "url": blob.get("url", ""),
            "version": blob.get("version"),
            "version_description": blob.get("version_description"),
        },
        "release": {"id": b.release_id} if b.release_id else None,
        "slug": {"id": b.slug_id} if b.slug_id else None,
        "stack": b.stack,
        "status": b.status,
        "updated_at": ts(b.updated_at),
        "user": {"email": user.email if user else "", "id": user.id if user else b.user_id or ""},
    }


async def builds_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    builds = builds_of(ctx)
    blob = ctx.field("source_blob")
    if not isinstance(blob, dict) or not isinstance(blob.get("url"), str) or not blob["url"]:
        raise InvalidParams("source_blob.url is required.")
    packs = ctx.field("buildpacks")
    bp_urls: list[str] | None = None
    if packs is not None:
        if not isinstance(packs, list):
            raise InvalidParams("buildpacks must be a list.")
        raw = [p.get("url") or p.get("name") if isinstance(p, dict) else p for p in packs]
        if not all(isinstance(u, str) and u for u in raw):
            raise InvalidParams("Each buildpack needs a url or name.")
        bp_urls = [str(u) for u in raw]
    source = {k: blob.get(k) for k in ("url", "version", "checksum", "version_description")}
    build = builds.create_pending(ctx.actor, app.id, source, bp_urls)
    builds.submit(ctx.actor, build, local_source_for(ctx))
    ctx.status = 201
    return build_json(ctx, build, app)


async def builds_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx,
        [build_json(ctx, b, app) for b in builds_of(ctx).list(app.id)],
        ("id", "started_at"),
        "id",
    )


async def builds_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return build_json(ctx, builds_of(ctx).get(app.id, ctx.params["build"]), app)


async def sources_create(ctx: Ctx) -> Any:
    source_id = builds_of(ctx).new_source()
    url = f"{urls(ctx)['api_url'].rstrip('/')}/streams/sources/{source_id}"
    ctx.status = 201
    return {"source_blob": {"get_url": url, "put_url": url}}


async def buildpacks_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return [
        {"buildpack": buildpack_json(u), "ordinal": i}
        for i, u in enumerate(builds_of(ctx).buildpacks(app.id))
    ]


async def buildpacks_replace(ctx: Ctx) -> Any:
    app = the_app(ctx)
    updates = ctx.field("updates")
    if not isinstance(updates, list):
        raise InvalidParams("updates must be a list of {buildpack}.")
    got = builds_of(ctx).set_buildpacks(app.id, updates)
    return [{"buildpack": buildpack_json(u), "ordinal": i} for i, u in enumerate(got)]


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
