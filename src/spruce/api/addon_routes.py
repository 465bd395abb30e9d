"""Add-on services and plans, add-ons, attachments, and the data actions (redis:*, pg:*)."""

from __future__ import annotations

from typing import Any

from starlette.responses import FileResponse
from starlette.routing import Route

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.views import AddonView, AttachmentView

from . import views
from .core_routes import managed_app, the_app
from .expansion import Json, Shape
from .http import Ctx, endpoint, paginate


def _ident(value: Any) -> Any:
    return (value.get("id") or value.get("name")) if isinstance(value, dict) else value


def the_addon(ctx: Ctx) -> AddonView:
    """The add-on in the path, as the caller may see it (404 otherwise)."""
    app_id = the_app(ctx).id if "app" in ctx.params else None
    return ctx.services.addons.get(ctx.actor, ctx.params["addon"], app_id)


def the_attachment(ctx: Ctx) -> AttachmentView:
    app_id = the_app(ctx).id if "app" in ctx.params else None
    return ctx.services.addons.attachment(ctx.actor, ctx.params["attachment"], app_id)


# -- the resources' shapes (Accept-Expansion, Accept-Inclusion) ---------------------
def _expand_service(ctx: Ctx, addon: AddonView, doc: Json) -> None:
    try:
        doc["addon_service"] = views.service_json(
            ctx.services.addons.catalog.service(addon.service.name)
        )
    except NotFound:  # a service no longer offered keeps its reference
        pass


def _expand_plan(ctx: Ctx, addon: AddonView, doc: Json) -> None:
    catalog = ctx.services.addons.catalog
    try:
        svc = catalog.service(addon.service.name)
        doc["plan"] = views.plan_json(catalog.plan(svc.name, addon.plan.name), svc.human_name)
    except NotFound:
        pass


def _include_addon_plan(ctx: Ctx, att: AttachmentView, doc: Json) -> None:
    doc["addon"]["plan"] = {"id": att.addon_plan.id, "name": att.addon_plan.name}


def _include_config_vars(ctx: Ctx, att: AttachmentView, doc: Json) -> None:
    doc["config_vars"] = list(att.config_var_names)


ADDON: Shape[AddonView] = Shape(
    views.addon_json, expansions={"addon_service": _expand_service, "plan": _expand_plan}
)
ATTACHMENT: Shape[AttachmentView] = Shape(
    views.attachment_json,
    inclusions={"addon:plan": _include_addon_plan, "config_vars": _include_config_vars},
)


# -- catalog ------------------------------------------------------------------------
def services_list(ctx: Ctx) -> Any:
    items = [views.service_json(s) for s in ctx.services.addons.catalog.services()]
    return paginate(ctx, items, ("id", "name"), "name")


def services_info(ctx: Ctx) -> Any:
    return views.service_json(ctx.services.addons.catalog.service(ctx.params["service"]))


def plans_list(ctx: Ctx) -> Any:
    svc = ctx.services.addons.catalog.service(ctx.params["service"])
    items = [views.plan_json(p, svc.human_name) for p in svc.plans]
    return paginate(ctx, items, ("id", "name"), "name")


def plans_info(ctx: Ctx) -> Any:
    catalog = ctx.services.addons.catalog
    svc = catalog.service(ctx.params["service"])
    return views.plan_json(catalog.plan(svc.name, ctx.params["plan"]), svc.human_name)


# -- add-ons ------------------------------------------------------------------------
def addons_list_all(ctx: Ctx) -> Any:
    items = ADDON.many(ctx, ctx.services.addons.visible(ctx.actor))
    return paginate(ctx, items, ("id", "name"), "name")


def addons_list_app(ctx: Ctx) -> Any:
    items = ADDON.many(ctx, ctx.services.addons.for_app(the_app(ctx).id))
    return paginate(ctx, items, ("id", "name"), "name")


async def addons_create(ctx: Ctx) -> Any:
    app = await ctx.off_loop(managed_app, ctx)
    att = ctx.field("attachment") or {}
    addon = await ctx.services.addons.create(
        ctx.actor,
        app.id,
        _ident(ctx.field("plan")),
        att.get("name") if isinstance(att, dict) else None,
        ctx.field("config"),
        ctx.field("name"),
    )
    ctx.status = 201
    return ADDON.one(ctx, addon)


def addons_info(ctx: Ctx) -> Any:
    return ADDON.one(ctx, the_addon(ctx))


def addons_sso(ctx: Ctx) -> Any:
    """The add-on's single sign-on (`heroku addons:open` with HEROKU_SUDO): its dashboard
    page, opened with a GET (the dashboard's own sign-in applies)."""
    return {"action": the_addon(ctx).web_url, "method": "get", "params": {}}


async def addons_update(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(the_addon, ctx)
    addons = ctx.services.addons
    await ctx.off_loop(addons.owning_app, addon, ctx.actor)
    if ctx.field("name"):
        addon = addons.rename(addon, ctx.field("name"))
    if ctx.field("plan"):
        addon = await addons.change_plan(ctx.actor, addon, ctx.field("plan"))
    return ADDON.one(ctx, addon)


async def addons_delete(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(the_addon, ctx)
    ctx.services.addons.owning_app(addon, ctx.actor)
    out = ADDON.one(ctx, addon)
    await ctx.services.addons.destroy(
        ctx.actor, addon, ctx.field("confirm"), bool(ctx.field("force", False))
    )
    out["state"] = "deprovisioned"
    return out


# -- attachments ---------------------------------------------------------------------
def attachments_list_all(ctx: Ctx) -> Any:
    items = ATTACHMENT.many(ctx, ctx.services.addons.attachments(ctx.actor))
    return paginate(ctx, items, ("id", "name"), "name")


def attachments_list_app(ctx: Ctx) -> Any:
    atts = ctx.services.addons.attachments(ctx.actor, app_id=the_app(ctx).id)
    return paginate(ctx, ATTACHMENT.many(ctx, atts), ("id", "name"), "name")


def attachments_list_addon(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    atts = ctx.services.addons.attachments(ctx.actor, addon_id=addon.id)
    return ATTACHMENT.many(ctx, atts)


def attachments_create(ctx: Ctx) -> Any:
    app_ident, addon_ident = _ident(ctx.field("app")), _ident(ctx.field("addon"))
    if not isinstance(app_ident, str) or not isinstance(addon_ident, str):
        raise InvalidParams("app and addon are required.")
    addons = ctx.services.addons
    app = ctx.services.apps.get(ctx.actor, app_ident, need="manage")
    addon = addons.get(ctx.actor, addon_ident)
    att = addons.attach(ctx.actor, addon, app.id, ctx.field("name"), ctx.field("confirm"))
    ctx.status = 201
    return ATTACHMENT.one(ctx, att)


def attachments_info(ctx: Ctx) -> Any:
    return ATTACHMENT.one(ctx, the_attachment(ctx))


async def attachments_delete(ctx: Ctx) -> Any:
    att = await ctx.off_loop(the_attachment, ctx)
    await ctx.services.addons.detach_and_rotate(ctx.actor, att)
    return ATTACHMENT.one(ctx, att)


def _resolve_app(ctx: Ctx) -> str | None:
    app = ctx.field("app")
    return ctx.services.apps.get(ctx.actor, app).id if isinstance(app, str) and app else None


def resolve_addon(ctx: Ctx) -> Any:
    """POST /actions/addons/resolve: what Heroku's CLI calls to find an add-on by name."""
    addon = ctx.services.addons.resolve_addon(
        ctx.actor, ctx.field("addon"), _resolve_app(ctx), ctx.field("addon_service")
    )
    return [ADDON.one(ctx, addon)]


def resolve_attachment(ctx: Ctx) -> Any:
    atts = ctx.services.addons.resolve_attachments(
        ctx.actor, ctx.field("addon_attachment"), _resolve_app(ctx), ctx.field("addon_service")
    )
    return ATTACHMENT.many(ctx, atts)


# -- data actions (redis:*, pg:*) -------------------------------------------------------
async def addon_info_action(ctx: Ctx) -> Any:
    info = await ctx.services.addon_data.info(await ctx.off_loop(the_addon, ctx))
    return {
        "addon": info.addon,
        "plan": info.plan,
        "info": [{"name": k, "values": [v]} for k, v in info.info],
    }


async def credentials_reset(ctx: Ctx) -> Any:
    addon = await ctx.services.addon_data.reset_credentials(
        ctx.actor, await ctx.off_loop(the_addon, ctx)
    )
    return {"addon": addon.name, "message": "Credentials reset; attached apps got a new release."}


def connection(ctx: Ctx) -> Any:
    """How the CLI connects for redis:cli / pg:psql (argv without secrets, env with them)."""
    c = ctx.services.addon_data.connection(the_addon(ctx))
    return {
        "argv": list(c.argv),
        "env": c.env,
        "host": c.host,
        "port": c.port,
        "user": c.user,
        "database": c.database,
    }


async def redis_settings(ctx: Ctx) -> Any:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    return await ctx.services.addon_data.redis_settings(await ctx.off_loop(the_addon, ctx), body)


def backups_list(ctx: Ctx) -> Any:
    return [views.backup_json(b) for b in ctx.services.addon_data.backups(the_addon(ctx))]


async def backups_capture(ctx: Ctx) -> Any:
    backup = await ctx.services.addon_data.capture_backup(await ctx.off_loop(the_addon, ctx))
    ctx.status = 201
    return views.backup_json(backup)


async def backups_restore(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(the_addon, ctx)
    await ctx.services.addon_data.restore_backup(ctx.actor, addon, ctx.field("backup"))
    return {"restored": ctx.field("backup"), "addon": addon.name}


def backups_download(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    backup = ctx.params["backup"]
    path = ctx.services.addon_data.backup_file(addon, backup)
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"{addon.name}-{backup}.dump"
    )


async def pg_ps(ctx: Ctx) -> Any:
    return await ctx.services.addon_data.ps(await ctx.off_loop(the_addon, ctx))


async def pg_locks(ctx: Ctx) -> Any:
    return await ctx.services.addon_data.locks(await ctx.off_loop(the_addon, ctx))


async def pg_kill(ctx: Ctx) -> Any:
    pid = await ctx.services.addon_data.kill(
        await ctx.off_loop(the_addon, ctx), ctx.field("pid"), bool(ctx.field("force", False))
    )
    return {"pid": pid, "killed": True}


def routes() -> list[Route]:
    A = "/apps/{app}"
    D = "/addons/{addon}/actions"
    return [
        Route("/addon-services", endpoint(services_list), methods=["GET"]),
        Route("/addon-services/{service}", endpoint(services_info), methods=["GET"]),
        Route("/addon-services/{service}/plans", endpoint(plans_list), methods=["GET"]),
        Route("/addon-services/{service}/plans/{plan}", endpoint(plans_info), methods=["GET"]),
        Route("/addons", endpoint(addons_list_all), methods=["GET"]),
        Route("/addons/{addon}", endpoint(addons_info), methods=["GET"]),
        Route("/addons/{addon}", endpoint(addons_delete), methods=["DELETE"]),
        Route(
            "/addons/{addon}/addon-attachments", endpoint(attachments_list_addon), methods=["GET"]
        ),
        Route(A + "/addons", endpoint(addons_list_app), methods=["GET"]),
        Route(A + "/addons", endpoint(addons_create), methods=["POST"]),
        Route(A + "/addons/{addon}", endpoint(addons_info), methods=["GET"]),
        Route(A + "/addons/{addon}/sso", endpoint(addons_sso), methods=["GET"]),
        Route(A + "/addons/{addon}", endpoint(addons_update), methods=["PATCH"]),
        Route(A + "/addons/{addon}", endpoint(addons_delete), methods=["DELETE"]),
        Route("/addon-attachments", endpoint(attachments_list_all), methods=["GET"]),
        Route("/addon-attachments", endpoint(attachments_create), methods=["POST"]),
        Route("/addon-attachments/{attachment}", endpoint(attachments_info), methods=["GET"]),
        Route("/addon-attachments/{attachment}", endpoint(attachments_delete), methods=["DELETE"]),
        Route(A + "/addon-attachments", endpoint(attachments_list_app), methods=["GET"]),
        Route(A + "/addon-attachments/{attachment}", endpoint(attachments_info), methods=["GET"]),
        Route("/actions/addons/resolve", endpoint(resolve_addon), methods=["POST"]),
        Route("/actions/addon-attachments/resolve", endpoint(resolve_attachment), methods=["POST"]),
        Route(D + "/info", endpoint(addon_info_action), methods=["GET"]),
        Route(D + "/credentials-reset", endpoint(credentials_reset), methods=["POST"]),
        Route(D + "/connection", endpoint(connection), methods=["GET"]),
        Route(D + "/redis-settings", endpoint(redis_settings), methods=["PATCH"]),
        Route(D + "/backups", endpoint(backups_list), methods=["GET"]),
        Route(D + "/backups", endpoint(backups_capture), methods=["POST"]),
        Route(D + "/backups/restore", endpoint(backups_restore), methods=["POST"]),
        Route(D + "/backups/{backup}", endpoint(backups_download), methods=["GET"]),
        Route(D + "/ps", endpoint(pg_ps), methods=["GET"]),
        Route(D + "/locks", endpoint(pg_locks), methods=["GET"]),
        Route(D + "/kill", endpoint(pg_kill), methods=["POST"]),
    ]
