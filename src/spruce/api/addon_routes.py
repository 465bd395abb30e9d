"""Add-on services and plans, add-ons, attachments, and the data actions (redis:*, pg:*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.responses import FileResponse
from starlette.routing import Route

from spruce.addons import AddonError, InvalidSettingError, Provider
from spruce.services.addons import plan_id, service_id
from spruce.services.errors import InvalidParams, NotFound, Unavailable
from spruce.store.models import Addon, AddonAttachment, App

from .core_routes import the_app, urls
from .http import Ctx, endpoint, paginate
from .views import EPOCH, ts


def addons_of(ctx: Ctx) -> Any:
    if getattr(ctx.services, "addons", None) is None:
        raise Unavailable("Add-ons are not available on this platform.")
    return ctx.services.addons


def service_json(p: Provider) -> dict[str, Any]:
    return {
        "cli_plugin_name": p.name.removeprefix("heroku-"),
        "created_at": ts(EPOCH),
        "human_name": p.human_name,
        "id": service_id(p.name),
        "name": p.name,
        "state": "ga",
        "supports_multiple_installations": True,
        "supports_sharing": True,
        "updated_at": ts(EPOCH),
        "supported_generations": [{"id": "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c01", "name": "cedar"}],
    }


def plan_json(p: Provider, plan: Any) -> dict[str, Any]:
    limits = ", ".join(f"{k}={v}" for k, v in (plan.limits or {}).items())
    return {
        "addon_service": {"id": service_id(p.name), "name": p.name},
        "compliance": None,
        "created_at": ts(EPOCH),
        "default": bool(plan.default),
        "description": f"{p.human_name} {plan.human_name}",
        "human_name": plan.human_name,
        "id": plan_id(p.name, plan.name),
        "installable_inside_private_network": False,
        "installable_outside_private_network": True,
        "name": f"{p.name}:{plan.name}",
        "price": {"cents": 0, "contract": False, "unit": "month"},
        "space_default": False,
        "state": "public",
        "updated_at": ts(EPOCH),
        "visible": True,
        "limits": plan.limits,
        "limits_summary": limits,
    }


def addon_json(ctx: Ctx, a: Addon) -> dict[str, Any]:
    app = ctx.services.apps.get_internal(a.app_id)
    svc = addons_of(ctx)
    return {
        "actions": [],
        "addon_service": {"id": service_id(a.service), "name": a.service},
        "app": {"id": app.id, "name": app.name},
        "billed_price": {"cents": 0, "contract": False, "unit": "month"},
        "billing_entity": {"id": app.id, "name": app.name, "type": "app"},
        "config_vars": svc.config_var_names(a),
        "created_at": ts(a.created_at),
        "id": a.id,
        "name": a.name,
        "plan": {"id": plan_id(a.service, a.plan), "name": f"{a.service}:{a.plan}"},
        "provider_id": a.provider_id or a.id,
        "provision_message": None,
        "state": a.state,
        "updated_at": ts(a.updated_at),
        "web_url": None,
    }


def attachment_json(ctx: Ctx, att: AddonAttachment) -> dict[str, Any]:
    addon = addons_of(ctx).get(att.addon_id)
    app = ctx.services.apps.get_internal(att.app_id)
    owner = ctx.services.apps.get_internal(addon.app_id)
    return {
        "addon": {"id": addon.id, "name": addon.name, "app": {"id": owner.id, "name": owner.name}},
        "app": {"id": app.id, "name": app.name},
        "created_at": ts(att.created_at),
        "id": att.id,
        "log_input_url": None,
        "name": att.name,
        "namespace": att.namespace,
        "updated_at": ts(att.updated_at),
        "web_url": None,
    }


def visible_app_ids(ctx: Ctx) -> set[str]:
    return {a.id for a in ctx.services.apps.list_for(ctx.actor)}


def the_addon(ctx: Ctx, app: App | None = None) -> Addon:
    return addons_of(ctx).get_for(
        visible_app_ids(ctx), ctx.params["addon"], app.id if app else None
    )  # type: ignore[no-any-return]


# -- catalog ------------------------------------------------------------------------
async def services_list(ctx: Ctx) -> Any:
    return paginate(
        ctx, [service_json(p) for p in addons_of(ctx).services()], ("id", "name"), "name"
    )


async def services_info(ctx: Ctx) -> Any:
    return service_json(addons_of(ctx).service(ctx.params["service"]))


async def plans_list(ctx: Ctx) -> Any:
    p = addons_of(ctx).service(ctx.params["service"])
    return paginate(ctx, [plan_json(p, plan) for plan in p.plans], ("id", "name"), "name")


async def plans_info(ctx: Ctx) -> Any:
    p = addons_of(ctx).service(ctx.params["service"])
    wanted = ctx.params["plan"].split(":")[-1]
    for plan in p.plans:
        if wanted in (plan.name, plan_id(p.name, plan.name)):
            return plan_json(p, plan)
    raise NotFound(f"Couldn't find that plan ({ctx.params['plan']}).")


# -- add-ons ------------------------------------------------------------------------
async def addons_list_all(ctx: Ctx) -> Any:
    ids = list(visible_app_ids(ctx))
    return paginate(
        ctx, [addon_json(ctx, a) for a in addons_of(ctx).all_for(ids)], ("id", "name"), "name"
    )


async def addons_list_app(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx, [addon_json(ctx, a) for a in addons_of(ctx).for_app(app.id)], ("id", "name"), "name"
    )


async def addons_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    plan = ctx.field("plan")
    if isinstance(plan, dict):
        plan = plan.get("name") or plan.get("id")
    att = ctx.field("attachment") or {}
    as_name = att.get("name") if isinstance(att, dict) else None
    addon = await addons_of(ctx).create(
        ctx.actor, app, plan, as_name, ctx.field("config"), ctx.field("name")
    )
    ctx.status = 201
    return addon_json(ctx, addon)


async def addons_info(ctx: Ctx) -> Any:
    app = the_app(ctx) if "app" in ctx.params else None
    return addon_json(ctx, the_addon(ctx, app))


async def addons_update(ctx: Ctx) -> Any:
    app = the_app(ctx)
    addon = the_addon(ctx, app)
    svc = addons_of(ctx)
    if ctx.field("name"):
        addon = svc.rename(addon, ctx.field("name"))
    plan = ctx.field("plan")
    if isinstance(plan, dict):
        plan = plan.get("name")
    if plan:
        addon = await svc.change_plan(ctx.actor, addon, plan)
    return addon_json(ctx, addon)


async def addons_delete(ctx: Ctx) -> Any:
    app = the_app(ctx) if "app" in ctx.params else None
    addon = the_addon(ctx, app)
    ctx.services.apps.get(ctx.actor, addon.app_id)  # the owning app's access is needed
    out = addon_json(ctx, addon)
    await addons_of(ctx).destroy(
        ctx.actor, addon, ctx.field("confirm"), bool(ctx.field("force", False))
    )
    out["state"] = "deprovisioned"
    return out


# -- attachments ---------------------------------------------------------------------
async def attachments_list_all(ctx: Ctx) -> Any:
    allowed = visible_app_ids(ctx)
    atts = [a for a in addons_of(ctx).attachments() if a.app_id in allowed]
    return paginate(ctx, [attachment_json(ctx, a) for a in atts], ("id", "name"), "name")


async def attachments_list_app(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx,
        [attachment_json(ctx, a) for a in addons_of(ctx).attachments(app_id=app.id)],
        ("id", "name"),
        "name",
    )


async def attachments_list_addon(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    return [attachment_json(ctx, a) for a in addons_of(ctx).attachments(addon_id=addon.id)]


async def attachments_create(ctx: Ctx) -> Any:
    app_ident = ctx.field("app")
    addon_ident = ctx.field("addon")
    if isinstance(app_ident, dict):
        app_ident = app_ident.get("id") or app_ident.get("name")
    if isinstance(addon_ident, dict):
        addon_ident = addon_ident.get("id") or addon_ident.get("name")
    if not isinstance(app_ident, str) or not isinstance(addon_ident, str):
        raise InvalidParams("app and addon are required.")
    app = ctx.services.apps.get(ctx.actor, app_ident)
    ctx.params["addon"] = addon_ident
    addon = the_addon(ctx)
    att = addons_of(ctx).attach(ctx.actor, addon, app, ctx.field("name"))
    ctx.status = 201
    return attachment_json(ctx, att)


def _the_attachment(ctx: Ctx) -> AddonAttachment:
    app = the_app(ctx) if "app" in ctx.params else None
    att = addons_of(ctx).attachment(ctx.params["attachment"], app.id if app else None)
    ctx.services.apps.get(ctx.actor, att.app_id)
    return att


async def attachments_info(ctx: Ctx) -> Any:
    return attachment_json(ctx, _the_attachment(ctx))


async def attachments_delete(ctx: Ctx) -> Any:
    att = _the_attachment(ctx)
    out = attachment_json(ctx, att)
    addons_of(ctx).detach(ctx.actor, att)
    return out


async def resolve_addon(ctx: Ctx) -> Any:
    """POST /actions/addons/resolve: what Heroku's CLI calls to find an add-on by name."""
    ident = ctx.field("addon")
    app_ident = ctx.field("app")
    if not isinstance(ident, str):
        raise InvalidParams("addon is required.")
    app = (
        ctx.services.apps.get(ctx.actor, app_ident)
        if isinstance(app_ident, str) and app_ident
        else None
    )
    ctx.params["addon"] = ident
    return [addon_json(ctx, the_addon(ctx, app))]


async def resolve_attachment(ctx: Ctx) -> Any:
    ident = ctx.field("addon_attachment")
    app_ident = ctx.field("app")
    if not isinstance(ident, str):
        raise InvalidParams("addon_attachment is required.")
    app = (
        ctx.services.apps.get(ctx.actor, app_ident)
        if isinstance(app_ident, str) and app_ident
        else None
    )
    svc = addons_of(ctx)
    found = [a for a in svc.attachments(app_id=app.id if app else None) if ident in (a.name, a.id)]
    if not found:
        try:
            addon = svc.get(ident, app.id if app else None)
            found = [
                a for a in svc.attachments(addon_id=addon.id) if app is None or a.app_id == app.id
            ]
        except NotFound:
            found = []
    allowed = visible_app_ids(ctx)
    found = [a for a in found if a.app_id in allowed]
    if not found:
        raise NotFound(f"Couldn't find that add-on attachment ({ident}).")
    return [attachment_json(ctx, a) for a in found]


# -- data actions (redis:*, pg:*) -------------------------------------------------------
def _provider(ctx: Ctx, addon: Addon) -> Any:
    return addons_of(ctx).service(addon.service)


async def addon_info_action(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    try:
        pairs = await _provider(ctx, addon).info(addon.id)
    except AddonError as e:
        raise InvalidParams(str(e)) from None
    return {
        "addon": addon.name,
        "plan": f"{addon.service}:{addon.plan}",
        "info": [{"name": k, "values": [v]} for k, v in pairs],
    }


async def credentials_reset(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    addon = await addons_of(ctx).reset_credentials(ctx.actor, addon)
    return {"addon": addon.name, "message": "Credentials reset; attached apps got a new release."}


async def connection(ctx: Ctx) -> Any:
    """How the CLI connects for redis:cli / pg:psql (argv without secrets, env with them)."""
    addon = the_addon(ctx)
    p = _provider(ctx, addon)
    cmd = p.cli(addon.id) if hasattr(p, "cli") else p.psql(addon.id)
    return {
        "argv": cmd.argv,
        "env": cmd.env,
        "host": cmd.host,
        "port": cmd.port,
        "user": cmd.user,
        "database": cmd.database,
    }


async def redis_settings(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    p = _provider(ctx, addon)
    if not hasattr(p, "set_maxmemory_policy"):
        raise InvalidParams(f"{addon.name} is not a Key-Value Store.")
    try:
        if ctx.field("maxmemory_policy") is not None:
            await p.set_maxmemory_policy(addon.id, str(ctx.field("maxmemory_policy")))
        if ctx.field("timeout") is not None:
            t = ctx.field("timeout")
            if isinstance(t, bool) or not isinstance(t, int | str) or not str(t).isdigit():
                raise InvalidParams("timeout must be a whole number of seconds.")
            await p.set_timeout(addon.id, int(t))
        if ctx.field("notify_keyspace_events") is not None:
            await p.set_keyspace_notifications(addon.id, str(ctx.field("notify_keyspace_events")))
    except InvalidSettingError as e:
        raise InvalidParams(str(e)) from None
    return p.settings(addon.id)  # type: ignore[no-any-return]


def _pg(ctx: Ctx, addon: Addon) -> Any:
    p = _provider(ctx, addon)
    if not hasattr(p, "capture_backup"):
        raise InvalidParams(f"{addon.name} is not a Postgres database.")
    return p


async def backups_list(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    return [b.to_dict() | {"path": None} for b in _pg(ctx, addon).list_backups(addon.id)]


async def backups_capture(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    try:
        b = await _pg(ctx, addon).capture_backup(addon.id)
    except AddonError as e:
        raise InvalidParams(str(e)) from None
    ctx.status = 201
    return b.to_dict() | {"path": None}


async def backups_restore(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    source = ctx.field("backup")
    if not isinstance(source, str) or not source:
        raise InvalidParams("backup (a backup id such as b001, or ADDON::b001) is required.")
    p = _pg(ctx, addon)
    src: str | Path = source
    if "::" in source:
        other_name, _, bid = source.partition("::")
        ctx.params["addon"] = other_name
        other = the_addon(ctx)
        src = _pg(ctx, other).backup_path(other.id, bid)
    try:
        await p.restore_backup(addon.id, src)
    except AddonError as e:
        raise InvalidParams(str(e)) from None
    return {"restored": source, "addon": addon.name}


async def backups_download(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    try:
        path = _pg(ctx, addon).backup_path(addon.id, ctx.params["backup"])
    except AddonError as e:
        raise NotFound(str(e)) from None
    if not Path(path).exists():
        raise NotFound(f"Couldn't find that backup ({ctx.params['backup']}).")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{addon.name}-{ctx.params['backup']}.dump",
    )


async def pg_ps(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    return await _pg(ctx, addon).ps(addon.id)


async def pg_locks(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    return await _pg(ctx, addon).locks(addon.id)


async def pg_kill(ctx: Ctx) -> Any:
    addon = the_addon(ctx)
    pid = ctx.field("pid")
    if isinstance(pid, bool) or not isinstance(pid, int | str) or not str(pid).isdigit():
        raise InvalidParams("pid must be a process id.")
    ok = await _pg(ctx, addon).kill(addon.id, int(pid), bool(ctx.field("force", False)))
    if not ok:
        raise NotFound(f"No query with pid {pid} in {addon.name}.")
    return {"pid": int(pid), "killed": True}


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


__all__ = ["routes", "urls"]
