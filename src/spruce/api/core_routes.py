"""Account, apps, config vars, releases, formation, features, collaborators, catalog."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.catalog import DYNO_SIZES, STACKS
from spruce.services.errors import InvalidParams, NotFound
from spruce.services.views import AppView

from . import views
from .expansion import Json, Shape
from .http import Ctx, endpoint, paged, paginate, request_range


def _expand_region(ctx: Ctx, app: AppView, doc: Json) -> None:
    doc["region"] = views.region_json(app.region)


def _expand_stack(ctx: Ctx, app: AppView, doc: Json) -> None:
    doc["stack"] = views.stack_json(app.stack)


def _expand_build_stack(ctx: Ctx, app: AppView, doc: Json) -> None:
    doc["build_stack"] = views.stack_json(app.build_stack)


APP: Shape[AppView] = Shape(
    views.app_json,
    expansions={
        "region": _expand_region,
        "stack": _expand_stack,
        "build_stack": _expand_build_stack,
    },
)


def the_app(ctx: Ctx, owner_only: bool = False, need: str = "view") -> AppView:
    """The path's app if the actor holds the permission `need` on it (services/app_access)."""
    return ctx.services.apps.get(ctx.actor, ctx.params["app"], owner_only=owner_only, need=need)


def deployable_app(ctx: Ctx) -> AppView:
    return the_app(ctx, need="deploy")


def operable_app(ctx: Ctx) -> AppView:
    return the_app(ctx, need="operate")


def managed_app(ctx: Ctx) -> AppView:
    return the_app(ctx, need="manage")


# -- account ------------------------------------------------------------------
def account_info(ctx: Ctx) -> Any:
    return views.account_json(ctx.actor)


def account_update(ctx: Ctx) -> Any:
    return views.account_json(ctx.services.accounts.update(ctx.actor.id, ctx.field("name")))


def rate_limits(ctx: Ctx) -> Any:
    return {"remaining": ctx.services.accounts.rate_limiter.remaining(ctx.actor.id)}


# -- apps ---------------------------------------------------------------------
def apps_list(ctx: Ctx) -> Any:
    owned = ctx.params.get("user") not in (None, "~")
    if owned and ctx.params["user"] not in (ctx.actor.id, ctx.actor.email):
        raise NotFound("Couldn't find that user.")
    allowed = ("id", "name", "updated_at")
    rng = request_range(ctx, allowed, "name")
    apps, more = ctx.services.apps.page_for(ctx.actor, rng)
    return paged(ctx, rng, APP.many(ctx, apps), more, allowed)


def apps_create(ctx: Ctx) -> Any:
    name = ctx.field("name")
    if name is not None and not isinstance(name, str):
        raise InvalidParams("name must be a string.")
    gen = ctx.field("generation")
    if isinstance(gen, dict):
        gen = gen.get("name")
    app = ctx.services.apps.create(
        ctx.actor, name or None, ctx.field("region"), ctx.field("stack"), gen
    )
    ctx.status = 201
    return APP.one(ctx, app)


def apps_info(ctx: Ctx) -> Any:
    return APP.one(ctx, the_app(ctx))


def _id_of(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def _name_of(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else value


def apps_update(ctx: Ctx) -> Any:
    if ctx.field("spruce_settings") is not None:
        ctx.services.apps.update_settings(
            ctx.actor, ctx.params["app"], ctx.field("spruce_settings")
        )
    app = ctx.services.apps.update(
        ctx.actor,
        ctx.params["app"],
        name=ctx.field("name"),
        maintenance=ctx.field("maintenance"),
        build_stack=_name_of(ctx.field("build_stack")),
    )
    return APP.one(ctx, app)


async def apps_delete(ctx: Ctx) -> Any:
    return APP.one(ctx, await ctx.services.delete_app(ctx.actor, ctx.params["app"]))


# -- config vars ----------------------------------------------------------------
def config_get(ctx: Ctx) -> Any:
    return ctx.services.releases.config(the_app(ctx, need="deploy").id)


def config_update(ctx: Ctx) -> Any:
    config, _ = ctx.services.releases.update_config(
        ctx.actor, the_app(ctx, need="deploy").id, ctx.body
    )
    return config


def release_config(ctx: Ctx) -> Any:
    return ctx.services.releases.release_config(
        the_app(ctx, need="deploy").id, ctx.params["release"]
    )


# -- releases -------------------------------------------------------------------
def releases_list(ctx: Ctx) -> Any:
    allowed = ("version", "id")
    rng = request_range(ctx, allowed, "version")
    rels, more = ctx.services.releases.page_for(the_app(ctx).ref, rng)
    return paged(ctx, rng, [views.release_json(r) for r in rels], more, allowed)


def releases_info(ctx: Ctx) -> Any:
    return views.release_json(ctx.services.releases.get(the_app(ctx).id, ctx.params["release"]))


def releases_create(ctx: Ctx) -> Any:
    """POST /apps/{app}/releases: a rollback ({"release": id}), a slug deploy ({"slug": id})
    or, on Fir, an image deploy ({"oci_image": id})."""
    app = the_app(ctx, need="deploy")
    if ctx.field("release"):
        release = ctx.services.releases.rollback(
            ctx.actor, app.id, str(_id_of(ctx.field("release")))
        )
    elif ctx.field("slug"):
        release = ctx.services.releases.deploy_slug(
            ctx.actor, app.id, str(_id_of(ctx.field("slug"))), ctx.field("description")
        )
    elif ctx.field("oci_image"):
        release = ctx.services.releases.deploy_image(
            ctx.actor, app.id, str(_id_of(ctx.field("oci_image"))), ctx.field("description")
        )
    else:
        raise InvalidParams("Provide release (to roll back to), slug or oci_image (to deploy).")
    ctx.status = 201
    return views.release_json(release)


# -- slugs --------------------------------------------------------------------
def slugs_create(ctx: Ctx) -> Any:
    slug = ctx.services.releases.create_slug(
        the_app(ctx, need="deploy").id,
        ctx.field("process_types"),
        commit=ctx.field("commit"),
        commit_description=ctx.field("commit_description"),
        buildpack_provided_description=ctx.field("buildpack_provided_description"),
        stack=_name_of(ctx.field("stack")),
        checksum=ctx.field("checksum"),
    )
    ctx.status = 201
    return views.slug_json(slug)


def slugs_info(ctx: Ctx) -> Any:
    return views.slug_json(ctx.services.releases.slug_of(the_app(ctx).id, ctx.params["slug"]))


# -- formation ------------------------------------------------------------------
def formation_list(ctx: Ctx) -> Any:
    rows = ctx.services.formation.list(the_app(ctx).id)
    return paginate(ctx, [views.formation_json(f) for f in rows], ("id", "type"), "type")


def formation_info(ctx: Ctx) -> Any:
    f = ctx.services.formation.get(the_app(ctx).id, ctx.params["formation"])
    return views.formation_json(f)


def formation_batch(ctx: Ctx) -> Any:
    rows = ctx.services.formation.update(
        ctx.actor, the_app(ctx, need="operate").id, ctx.field("updates")
    )
    return [views.formation_json(f) for f in rows]


def formation_update(ctx: Ctx) -> Any:
    body = dict(ctx.body) if isinstance(ctx.body, dict) else {}
    body["type"] = ctx.params["formation"]
    rows = ctx.services.formation.update(ctx.actor, the_app(ctx, need="operate").id, [body])
    return views.formation_json(rows[0])


# -- features -------------------------------------------------------------------
def features_list(ctx: Ctx) -> Any:
    feats = ctx.services.features.list(the_app(ctx).id)
    return paginate(ctx, [views.feature_json(f) for f in feats], ("id", "name"), "name")


def features_info(ctx: Ctx) -> Any:
    return views.feature_json(ctx.services.features.get(the_app(ctx).id, ctx.params["feature"]))


def features_update(ctx: Ctx) -> Any:
    f = ctx.services.features.update(
        ctx.actor, the_app(ctx, need="manage").id, ctx.params["feature"], ctx.field("enabled")
    )
    return views.feature_json(f)


# -- collaborators ----------------------------------------------------------------
# Also under /teams/apps/{app}/collaborators (team_routes.py), where permissions are set.
def collaborators_list(ctx: Ctx) -> Any:
    rows = ctx.services.collaborators.list(ctx.actor, ctx.params["app"])
    return paginate(ctx, [views.collaborator_json(c) for c in rows], ("email", "id"))


def collaborators_create(ctx: Ctx) -> Any:
    user = ctx.field("user")
    if isinstance(user, dict):
        user = user.get("email") or user.get("id")
    if not isinstance(user, str) or not user:
        raise InvalidParams("user (an email or id) is required.")
    c = ctx.services.collaborators.add(ctx.actor, ctx.params["app"], user, ctx.field("permissions"))
    ctx.status = 201
    return views.collaborator_json(c)


def collaborators_info(ctx: Ctx) -> Any:
    c = ctx.services.collaborators.find(ctx.actor, ctx.params["app"], ctx.params["collaborator"])
    return views.collaborator_json(c)


def collaborators_update(ctx: Ctx) -> Any:
    c = ctx.services.collaborators.update(
        ctx.actor, ctx.params["app"], ctx.params["collaborator"], ctx.field("permissions")
    )
    return views.collaborator_json(c)


def collaborators_delete(ctx: Ctx) -> Any:
    c = ctx.services.collaborators.remove(ctx.actor, ctx.params["app"], ctx.params["collaborator"])
    return views.collaborator_json(c)


# -- catalog --------------------------------------------------------------------
def regions_list(ctx: Ctx) -> Any:
    regions = [views.region_json(r.name, r) for r in ctx.services.regions.all]
    return paginate(ctx, regions, ("id", "name"))


def regions_info(ctx: Ctx) -> Any:
    r = ctx.services.regions.get(ctx.params["region"])
    return views.region_json(r.name, r)


def stacks_list(ctx: Ctx) -> Any:
    return paginate(ctx, [views.stack_json(s["name"]) for s in STACKS], ("id", "name"))


def stacks_info(ctx: Ctx) -> Any:
    for s in STACKS:
        if ctx.params["stack"] in (s["id"], s["name"]):
            return views.stack_json(s["name"])
    raise NotFound("Couldn't find that stack.")


def dyno_sizes_list(ctx: Ctx) -> Any:
    return paginate(ctx, [views.dyno_size_json(s) for s in DYNO_SIZES], ("id", "name"))


def available_dyno_sizes(ctx: Ctx) -> Any:
    """The sizes this app may use: its generation's."""
    gen = the_app(ctx).generation
    sizes = [views.dyno_size_json(s) for s in DYNO_SIZES if s.generation == gen]
    return paginate(ctx, sizes, ("id", "name"))


def dyno_sizes_info(ctx: Ctx) -> Any:
    for s in DYNO_SIZES:
        if ctx.params["size"].lower() in (s.id, s.name):
            return views.dyno_size_json(s)
    raise NotFound("Couldn't find that dyno size.")


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
        Route("/regions", endpoint(regions_list), methods=["GET"]),
        Route("/regions/{region}", endpoint(regions_info), methods=["GET"]),
        Route("/stacks", endpoint(stacks_list), methods=["GET"]),
        Route("/stacks/{stack}", endpoint(stacks_info), methods=["GET"]),
        Route("/dyno-sizes", endpoint(dyno_sizes_list), methods=["GET"]),
        Route(A + "/available-dyno-sizes", endpoint(available_dyno_sizes), methods=["GET"]),
        Route("/dyno-sizes/{size}", endpoint(dyno_sizes_info), methods=["GET"]),
    ]
