"""Heroku's data API, which `heroku pg:*` (/client/v11) and `redis:*` (/redis/v0) call.

Heroku serves it on its own host (HEROKU_DATA_HOST, api.data.heroku.com). Heroku's CLI
sends those requests with `hostname` set to that host but keeps the protocol and port of
HEROKU_HOST, so Spruce serves the data API on the API's own port and `spruce heroku-env`
sets HEROKU_DATA_HOST to the API's host. Same keys, same access rule as the Platform API.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import FileResponse
from starlette.routing import Route

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.pg_transfers import TransferView
from spruce.services.views import AddonInfo, AddonView

from . import views
from .http import Ctx, endpoint, error_response

# What Heroku's data API says of each maxmemory policy (redis:maxmemory prints it).
POLICIES = {
    "noeviction": "return errors when memory limit is reached",
    "allkeys-lfu": "evict least frequently used keys out of all keys",
    "allkeys-lru": "evict least recently used keys out of all keys",
    "allkeys-random": "evict random keys out of all keys",
    "volatile-lfu": "evict least frequently used keys out of keys with an expire field set",
    "volatile-lru": "evict least recently used keys out of keys with an expire field set",
    "volatile-random": "evict random keys out of keys with an expire field set",
    "volatile-ttl": "evict keys with an expire field set, shortest time to live first",
}
DEFAULTS: dict[str, Any] = {
    "maxmemory_policy": "noeviction",
    "timeout": 300,
    "notify_keyspace_events": "",
}
DESCRIPTIONS = {
    "maxmemory_policy": "The policy Redis follows when the memory limit is reached.",
    "timeout": "Seconds after which an idle client connection is closed (0: never).",
    "notify_keyspace_events": "Keyspace notifications sent to pub/sub clients.",
}


def _addon(ctx: Ctx) -> AddonView:
    # The CLI names the add-on by id (pg) or name (redis); both resolve here.
    return ctx.services.addons.get(ctx.actor, ctx.params["addon"])


def _info_json(info: AddonInfo) -> list[dict[str, Any]]:
    return [{"name": k, "values": [v] if v else []} for k, v in info.info]


def _database_json(addon: AddonView, info: AddonInfo) -> dict[str, Any]:
    pairs = dict(info.info)
    available = pairs.get("Status", "").lower() == "available"
    return {
        "addon_id": addon.id,
        "name": addon.name,
        "plan": addon.plan.name.partition(":")[2] or addon.plan.name,
        "resource_url": info.resource_url,
        "created_at": addon.created_at.isoformat(),
        "postgres_version": pairs.get("PG Version"),
        "waiting?": not available,
        "following": None,
        "leader": None,
        "info": _info_json(info),
    }


# -- Postgres (/client/v11) -----------------------------------------------------------------
async def pg_database(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    return _database_json(addon, await ctx.services.addon_data.info(addon))


async def pg_wait_status(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    info = await ctx.services.addon_data.info(addon)
    status = dict(info.info).get("Status", "Unavailable")
    return {"waiting?": status.lower() != "available", "error?": False, "message": status}


async def pg_stats_reset(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    await ctx.services.addon_data.stats_reset(addon)
    return {"message": f"Statistics for {addon.name} reset."}


def _settings_json(settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        entry: dict[str, Any] = {
            "desc": DESCRIPTIONS[key],
            "value": settings.get(key, default),
            "default": default,
        }
        if key == "maxmemory_policy":
            entry["values"] = POLICIES
        out[key] = entry
    return out


async def redis_database(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    info = await ctx.services.addon_data.info(addon)
    settings = ctx.services.addon_data.settings(addon)
    pairs = dict(info.info)
    return {
        "addon_id": addon.id,
        "name": addon.name,
        "plan": addon.plan.name.partition(":")[2] or addon.plan.name,
        "resource_url": info.resource_url,
        "created_at": addon.created_at.isoformat(),
        "version": pairs.get("Version", ""),
        "prefer_native_tls": True,
        "info": _info_json(info),
        "config": _settings_json(settings),
    }


async def redis_config(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if not set(body) & set(DEFAULTS):
        raise InvalidParams(f"Give one of {', '.join(DEFAULTS)}.")
    return _settings_json(await ctx.services.addon_data.redis_settings(addon, body))


async def redis_credentials_rotation(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    await ctx.services.addon_data.reset_credentials(ctx.actor, addon)
    return {"message": f"Credentials of {addon.name} rotated."}


async def redis_wait(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    info = await ctx.services.addon_data.info(addon)
    status = dict(info.info).get("Status", "stopped")
    return {"waiting?": status.lower() != "available", "message": status}


# -- PG Backups' transfers (/client/v11) -----------------------------------------------------
def transfer_json(t: TransferView, verbose: bool = False) -> dict[str, Any]:
    when = views.ts(t.created_at)
    done = views.ts(t.finished_at)
    backup = t.kind == "backup"
    logs: list[dict[str, str]] = []
    if verbose:
        what = (
            f"backup of {t.from_name}" if backup else f"restore of {t.from_name} into {t.to_name}"
        )
        logs.append({"created_at": when or "", "level": "info", "message": f"started {what}"})
        if t.finished_at is not None:
            end = "finished" if t.succeeded else f"failed: {t.message}"
            logs.append({"created_at": done or "", "level": "info", "message": end})
    return {
        "uuid": t.uuid,
        "num": t.num,
        "from_name": t.from_name,
        "from_type": "pg_dump" if backup else "gof3r",
        "from_url": t.from_url,
        "to_name": t.to_name,
        "to_type": "gof3r" if backup else "pg_restore",
        "to_url": t.to_url,
        "options": {},
        "source_bytes": t.source_bytes,
        "processed_bytes": t.processed_bytes,
        "succeeded": t.succeeded,
        "warnings": 0,
        "created_at": when,
        "started_at": when,
        "updated_at": done or when,
        "finished_at": done,
        "canceled_at": None,
        "deleted_at": None,
        "purged_at": None,
        "num_keep": 25,
        "logs": logs,
    }


def transfers_list(ctx: Ctx) -> Any:
    return [transfer_json(t) for t in ctx.services.pg_transfers.list(ctx.actor, ctx.params["app"])]


def transfers_info(ctx: Ctx) -> Any:
    t = ctx.services.pg_transfers.get(ctx.actor, ctx.params["app"], ctx.params["transfer"])
    return transfer_json(t, verbose=ctx.request.query_params.get("verbose") == "true")


async def transfers_delete(ctx: Ctx) -> Any:
    t = await ctx.services.pg_transfers.delete(ctx.actor, ctx.params["app"], ctx.params["transfer"])
    return transfer_json(t)


def transfers_public_url(ctx: Ctx) -> Any:
    url, expires = ctx.services.pg_transfers.public_url(
        ctx.actor, ctx.params["app"], ctx.params["transfer"]
    )
    return {"url": url, "expires_at": expires}


def transfers_cancel(ctx: Ctx) -> Any:
    t = ctx.services.pg_transfers.get(ctx.actor, ctx.params["app"], ctx.params["transfer"])
    # Spruce's backups and restores run to the end within the request that starts them
    raise InvalidParams(f"{t.name} has already finished: there is nothing to cancel.")


async def pg_capture(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    ctx.status = 201
    return transfer_json(await ctx.services.pg_transfers.capture(ctx.actor, addon))


async def pg_restore(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    t = await ctx.services.pg_transfers.restore(ctx.actor, addon, ctx.field("backup_url"))
    ctx.status = 201
    return transfer_json(t)


def pg_transfer_schedules(ctx: Ctx) -> Any:
    _addon(ctx)
    return []  # Spruce takes no scheduled backups (pg:backups:schedule is refused)


def pg_schedule(ctx: Ctx) -> Any:
    _addon(ctx)
    raise InvalidParams(
        "Spruce does not take scheduled backups: capture them with pg:backups:capture "
        "(from cron or a scheduler dyno)."
    )


async def backup_download(request: Any) -> Any:
    """A backup's download link (no credentials: the sealed token is the permission)."""
    services = request.app.state.services
    try:
        path, name = services.pg_transfers.open_public(request.path_params["token"])
    except NotFound as e:
        return error_response(404, e.id, e.message)
    return FileResponse(path, media_type="application/octet-stream", filename=name)


# -- credentials (/postgres/v0) -------------------------------------------------------------
def _credential_json(ctx: Ctx, addon: AddonView) -> dict[str, Any]:
    c = ctx.services.addon_data.connection(addon)
    return {
        "uuid": addon.id,
        "name": "default",
        "state": "active",
        "database": c.database,
        "host": c.host,
        "port": c.port,
        "credentials": [
            {
                "user": c.user,
                "password": c.env.get("PGPASSWORD", ""),
                "state": "active",
                "connections": None,
            }
        ],
    }


def pg_credentials(ctx: Ctx) -> Any:
    return [_credential_json(ctx, _addon(ctx))]


def pg_credential(ctx: Ctx) -> Any:
    addon = _addon(ctx)
    if ctx.params.get("name", "default") != "default":
        raise NotFound(f"Couldn't find that credential ({ctx.params['name']}) on {addon.name}.")
    return _credential_json(ctx, addon)


def pg_credentials_create(ctx: Ctx) -> Any:
    _addon(ctx)
    raise InvalidParams("Essential-tier databases support only the default credential.")


async def pg_credentials_rotate(ctx: Ctx) -> Any:
    addon = await ctx.off_loop(_addon, ctx)
    if ctx.params.get("name", "default") != "default":
        raise NotFound(f"Couldn't find that credential ({ctx.params['name']}) on {addon.name}.")
    await ctx.services.addon_data.reset_credentials(ctx.actor, addon)
    return {"message": f"Credentials of {addon.name} rotated."}


def routes() -> list[Route]:
    pg, kvs = "/client/v11/databases/{addon}", "/redis/v0/databases/{addon}"
    T = "/client/v11/apps/{app}/transfers"
    pg0 = "/postgres/v0/databases/{addon}"
    cred = pg0 + "/credentials"
    return [
        Route(pg, endpoint(pg_database), methods=["GET"]),
        Route(pg + "/wait_status", endpoint(pg_wait_status), methods=["GET"]),
        Route(pg + "/stats_reset", endpoint(pg_stats_reset), methods=["PUT"]),
        Route(kvs, endpoint(redis_database), methods=["GET"]),
        Route(kvs + "/config", endpoint(redis_config), methods=["PATCH"]),
        Route(
            kvs + "/credentials_rotation", endpoint(redis_credentials_rotation), methods=["POST"]
        ),
        Route(kvs + "/wait", endpoint(redis_wait), methods=["GET"]),
        Route(pg + "/backups", endpoint(pg_capture), methods=["POST"]),
        Route(pg + "/restores", endpoint(pg_restore), methods=["POST"]),
        Route(pg + "/transfer-schedules", endpoint(pg_transfer_schedules), methods=["GET"]),
        Route(pg + "/transfer-schedules", endpoint(pg_schedule), methods=["POST"]),
        Route(T, endpoint(transfers_list), methods=["GET"]),
        Route(T + "/{transfer}", endpoint(transfers_info), methods=["GET"]),
        Route(T + "/{transfer}", endpoint(transfers_delete), methods=["DELETE"]),
        Route(
            T + "/{transfer}/actions/public-url", endpoint(transfers_public_url), methods=["POST"]
        ),
        Route(T + "/{transfer}/actions/cancel", endpoint(transfers_cancel), methods=["POST"]),
        Route(cred, endpoint(pg_credentials), methods=["GET"]),
        Route(cred, endpoint(pg_credentials_create), methods=["POST"]),
        Route(cred + "/{name}", endpoint(pg_credential), methods=["GET"]),
        Route(
            cred + "/{name}/credentials_rotation",
            endpoint(pg_credentials_rotate),
            methods=["POST"],
        ),
        Route(pg0 + "/credentials_rotation", endpoint(pg_credentials_rotate), methods=["POST"]),
        Route("/streams/backups/{token}", backup_download, methods=["GET"]),
    ]
