"""Account, apps, config vars, releases, formation, features, collaborators, catalog."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.catalog import DYNO_SIZES, REGIONS, STACKS
from spruce.services.errors import InvalidParams, NotFound
from spruce.store.models import App

from . import views
from .http import Ctx, endpoint, paginate


def urls(ctx: Ctx) -> dict[str, str]:
    return ctx.request.app.state.urls  # type: ignore[no-any-return]


def app_out(ctx: Ctx, app: App) -> dict[str, Any]:
    out = views.app_json(app, ctx.services.apps.owner(app), urls(ctx))
    out["spruce_settings"] = {"boot_timeout": 60, "formation_limit": 100, **(app.settings or {})}
    return out


def the_app(ctx: Ctx, owner_only: bool = False) -> App:
    return ctx.services.apps.get(ctx.actor, ctx.params["app"], owner_only=owner_only)


# -- account ------------------------------------------------------------------
async def account_info(ctx: Ctx) -> Any:
    return views.account_json(ctx.actor)


async def account_update(ctx: Ctx) -> Any:
    return views.account_json(ctx.services.accounts.update(ctx.actor.id, ctx.field("name")))


async def rate_limits(ctx: Ctx) -> Any:
    return {"remaining": ctx.services.accounts.rate_limiter.remaining(ctx.actor.id)}


# -- apps ---------------------------------------------------------------------
async def apps_list(ctx: Ctx) -> Any:
    owned = ctx.params.get("user") not in (None, "~")
    if owned and ctx.params["user"] not in (ctx.actor.id, ctx.actor.email):
        raise NotFound("Couldn't find that user.")
    apps = ctx.services.apps.list_for(ctx.actor)
    return paginate(ctx, [app_out(ctx, a) for a in apps], ("id", "name", "updated_at"), "name")


async def apps_create(ctx: Ctx) -> Any:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidParams("name must be a string.")
    gen = body.get("generation")
    if isinstance(gen, dict):
        gen = gen.get("name")
    app = ctx.services.apps.create(
        ctx.actor, name or None, body.get("region"), body.get("stack"), gen
    )
    ctx.status = 201
    return app_out(ctx, app)


async def apps_info(ctx: Ctx) -> Any:
    return app_out(ctx, the_app(ctx))


async def apps_update(ctx: Ctx) -> Any:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if "spruce_settings" in body:
        ctx.services.apps.update_settings(ctx.actor, ctx.params["app"], body["spruce_settings"])
    app = ctx.services.apps.update(
        ctx.actor,
        ctx.params["app"],
        name=body.get("name"),
        maintenance=body.get("maintenance"),
        build_stack=body.get("build_stack")
        if isinstance(body.get("build_stack"), str)
        else (body.get("build_stack") or {}).get("name")
        if body.get("build_stack")
        else None,
    )
    return app_out(ctx, app)


async def apps_delete(ctx: Ctx) -> Any:
    app = the_app(ctx, owner_only=True)
    out = app_out(ctx, app)
    await ctx.services.delete_app(ctx.actor, app.id)
    return out


# -- config vars ----------------------------------------------------------------
async def config_get(ctx: Ctx) -> Any:
    return ctx.services.releases.config(the_app(ctx).id)


async def config_update(ctx: Ctx) -> Any:
    app = the_app(ctx)
    config, _ = ctx.services.releases.update_config(ctx.actor, app.id, ctx.body)
    return config


async def release_config(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return dict(ctx.services.releases.get(app.id, ctx.params["release"]).config or {})


# -- releases -------------------------------------------------------------------
def release_out(ctx: Ctx, app: App, release: Any, current_id: str | None) -> dict[str, Any]:
    user = None
    if release.user_id:
        try:
            user = ctx.services.accounts.get(release.user_id)
        except NotFound:
            user = None
    slug = ctx.services.releases.slug(release.slug_id)
    stream = None
    if release.output_path:
        stream = f"{urls(ctx)['api_url'].rstrip('/')}/streams/release-output/{release.id}"
    return views.release_json(release, app, user, release.id == current_id, slug, stream)


async def releases_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    cur = ctx.services.releases.current(app.id)
    rels = ctx.services.releases.list(app.id)
    return paginate(
        ctx, [release_out(ctx, app, r, cur.id if cur else None) for r in rels], ("version", "id")
    )


async def releases_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    cur = ctx.services.releases.current(app.id)
    return release_out(
        ctx, app, ctx.services.releases.get(app.id, ctx.params["release"]), cur.id if cur else None
    )


async def releases_create(ctx: Ctx) -> Any:
    """POST /apps/{app}/releases: a rollback ({"release": id}) or a slug deploy ({"slug": id})."""
    app = the_app(ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if body.get("release"):
        release = ctx.services.releases.rollback(ctx.actor, app.id, str(body["release"]))
    elif body.get("slug"):
        slug = ctx.services.releases.slug(str(body["slug"]))
        if slug is None or slug.app_id != app.id:
            raise NotFound("Couldn't find that slug.")
        desc = body.get("description") or f"Deploy {(slug.commit or slug.id)[:7]}"
        release = ctx.services.releases.create(ctx.actor, app.id, desc, slug_id=slug.id)
    else:
        raise InvalidParams("Provide release (to roll back to) or slug (to deploy).")
    ctx.status = 201
    cur = ctx.services.releases.current(app.id)
    return release_out(ctx, app, release, cur.id if cur else None)


# -- slugs --------------------------------------------------------------------
async def slugs_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    slug = ctx.services.releases.create_slug(
        app.id,
        body.get("process_types"),
        commit=body.get("commit"),
        commit_description=body.get("commit_description"),
        buildpack_provided_description=body.get("buildpack_provided_description"),
        stack=body.get("stack"),
        checksum=body.get("checksum"),
    )
    ctx.status = 201
    return views.slug_json(slug)


async def slugs_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    slug = ctx.services.releases.slug(ctx.params["slug"])
    if slug is None or slug.app_id != app.id:
        raise NotFound("Couldn't find that slug.")
    return views.slug_json(slug)


# -- formation ------------------------------------------------------------------
async def formation_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx,
        [views.formation_json(f, app) for f in ctx.services.formation.list(app.id)],
        ("id", "type"),
        "type",
    )


async def formation_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return views.formation_json(ctx.services.formation.get(app.id, ctx.params["formation"]), app)


async def formation_batch(ctx: Ctx) -> Any:
    app = the_app(ctx)
    updates = ctx.field("updates")
    rows = ctx.services.formation.update(ctx.actor, app.id, updates)
    return [views.formation_json(f, app) for f in rows]


async def formation_update(ctx: Ctx) -> Any:
    app = the_app(ctx)
    body = dict(ctx.body) if isinstance(ctx.body, dict) else {}
    body["type"] = ctx.params["formation"]
    rows = ctx.services.formation.update(ctx.actor, app.id, [body])
    return views.formation_json(rows[0], app)


# -- features -------------------------------------------------------------------
async def features_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx,
        [views.feature_json(f, on) for f, on in ctx.services.features.list(app.id)],
        ("id", "name"),
        "name",
    )


async def features_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return views.feature_json(*ctx.services.features.get(app.id, ctx.params["feature"]))


async def features_update(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return views.feature_json(
        *ctx.services.features.update(
            ctx.actor, app.id, ctx.params["feature"], ctx.field("enabled")
        )
    )


# -- collaborators ----------------------------------------------------------------
async def collaborators_list(ctx: Ctx) -> Any:
    app, rows = ctx.services.apps.collaborators(ctx.actor, ctx.params["app"])
    return paginate(ctx, [views.collaborator_json(c, u, app) for c, u in rows], ("email", "id"))


async def collaborators_create(ctx: Ctx) -> Any:
    user = ctx.field("user")
    if isinstance(user, dict):
        user = user.get("email") or user.get("id")
    if not isinstance(user, str) or not user:
        raise InvalidParams("user (an email or id) is required.")
    app = the_app(ctx)
    c, u = ctx.services.apps.add_collaborator(
        ctx.actor, app.id, user, bool(ctx.field("silent", False))
    )
    ctx.status = 201
    return views.collaborator_json(c, u, app)


async def collaborators_info(ctx: Ctx) -> Any:
    app, rows = ctx.services.apps.collaborators(ctx.actor, ctx.params["app"])
    ident = ctx.params["collaborator"].lower()
    for c, u in rows:
        if ident in (u.email, u.id) or (c is not None and ident == c.id):
            return views.collaborator_json(c, u, app)
    raise NotFound(f"Couldn't find that collaborator ({ident}).")


async def collaborators_delete(ctx: Ctx) -> Any:
    app = the_app(ctx)
    c, u = ctx.services.apps.remove_collaborator(ctx.actor, app.id, ctx.params["collaborator"])
    return views.collaborator_json(c, u, app)


# -- catalog --------------------------------------------------------------------
async def regions_list(ctx: Ctx) -> Any:
    return paginate(ctx, [views.region_json(r["name"]) for r in REGIONS], ("id", "name"))


async def regions_info(ctx: Ctx) -> Any:
    for r in REGIONS:
        if ctx.params["region"] in (r["id"], r["name"]):
            return views.region_json(r["name"])
    raise NotFound("Couldn't find that region.")


async def stacks_list(ctx: Ctx) -> Any:
    return paginate(ctx, [views.stack_json(s["name"]) for s in STACKS], ("id", "name"))


async def stacks_info(ctx: Ctx) -> Any:
    for s in STACKS:
        if ctx.params["stack"] in (s["id"], s["name"]):
            return views.stack_json(s["name"])
    raise NotFound("Couldn't find that stack.")


async def dyno_sizes_list(ctx: Ctx) -> Any:
    return paginate(ctx, [dyno_size_json(s) for s in DYNO_SIZES], ("id", "name"))


async def dyno_sizes_info(ctx: Ctx) -> Any:
    for s in DYNO_SIZES:
        if ctx.params["size"].lower() in (s.id, s.name):
            return dyno_size_json(s)
    raise NotFound("Couldn't find that dyno size.")


def dyno_size_json(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "architecture_type": "amd64",
        "compute": s.compute,
        "cost": None,
        "dedicated": s.cost_tier == "professional" and s.name.startswith("performance"),
        "precise_dyno_units": float(s.dyno_units),
        "memory": s.memory_gb,
        "private_space_only": False,
        "generation": {"id": views._generation_id("cedar"), "name": "cedar"},
    }


async def pipeline_couplings_for_app(ctx: Ctx) -> Any:
    the_app(ctx)
    raise NotFound("This app is not part of any pipeline.")


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route("/account", endpoint(account_info), methods=["GET"]),
        Route("/account", endpoint(account_update), methods=["PATCH"]),
        Route("/users/~", endpoint(account_info), methods=["GET"]),
        Route("/account/rate-limits", endpoint(rate_limits), methods=["GET"]),
        Route("/apps", endpoint(apps_list), methods=["GET"]),
        Route("/users/{user}/apps", endpoint(apps_list), methods=["GET"]),
        Route("/apps", endpoint(apps_create), methods=["POST"]),
        Route(A, endpoint(apps_info), methods=["GET"]),
        Route(A, endpoint(apps_update), methods=["PATCH"]),
        Route(A, endpoint(apps_delete), methods=["DELETE"]),
        Route(A + "/config-vars", endpoint(config_get), methods=["GET"]),
        Route(A + "/config-vars", endpoint(config_update), methods=["PATCH"]),
        Route(A + "/releases", endpoint(releases_list), methods=["GET"]),
        Route(A + "/releases", endpoint(releases_create), methods=["POST"]),
        Route(A + "/releases/{release}", endpoint(releases_info), methods=["GET"]),
        Route(A + "/releases/{release}/config-vars", endpoint(release_config), methods=["GET"]),
        Route(A + "/slugs", endpoint(slugs_create), methods=["POST"]),
        Route(A + "/slugs/{slug}", endpoint(slugs_info), methods=["GET"]),
        Route(A + "/formation", endpoint(formation_list), methods=["GET"]),
        Route(A + "/formation", endpoint(formation_batch), methods=["PATCH"]),
        Route(A + "/formation/{formation}", endpoint(formation_info), methods=["GET"]),
        Route(A + "/formation/{formation}", endpoint(formation_update), methods=["PATCH"]),
        Route(A + "/features", endpoint(features_list), methods=["GET"]),
        Route(A + "/features/{feature}", endpoint(features_info), methods=["GET"]),
        Route(A + "/features/{feature}", endpoint(features_update), methods=["PATCH"]),
        Route(A + "/collaborators", endpoint(collaborators_list), methods=["GET"]),
        Route(A + "/collaborators", endpoint(collaborators_create), methods=["POST"]),
        Route(A + "/collaborators/{collaborator}", endpoint(collaborators_info), methods=["GET"]),
        Route(
            A + "/collaborators/{collaborator}", endpoint(collaborators_delete), methods=["DELETE"]
        ),
        Route(A + "/pipeline-couplings", endpoint(pipeline_couplings_for_app), methods=["GET"]),
        Route("/regions", endpoint(regions_list), methods=["GET"]),
        Route("/regions/{region}", endpoint(regions_info), methods=["GET"]),
        Route("/stacks", endpoint(stacks_list), methods=["GET"]),
        Route("/stacks/{stack}", endpoint(stacks_info), methods=["GET"]),
        Route("/dyno-sizes", endpoint(dyno_sizes_list), methods=["GET"]),
        Route("/dyno-sizes/{size}", endpoint(dyno_sizes_info), methods=["GET"]),
    ]
