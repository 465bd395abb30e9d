"""Heroku's data API, which `heroku pg:*` (/client/v11) and `redis:*` (/redis/v0) call.

Heroku serves it on its own host (HEROKU_DATA_HOST, api.data.heroku.com). Heroku's CLI
sends those requests with `hostname` set to that host but keeps the protocol and port of
HEROKU_HOST, so Spruce serves the data API on the API's own port and `spruce heroku-env`
sets HEROKU_DATA_HOST to the API's host. Same keys, same access rule as the Platform API.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.errors import InvalidParams
from spruce.services.views import AddonInfo, AddonView

from .http import Ctx, endpoint

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


async def pg_credentials(ctx: Ctx) -> Any:
    """GET /postgres/v0/databases/{addon}/credentials (`pg:credentials`): the one
    credential, `default`, with its role; never a password."""
    addon = await ctx.off_loop(_addon, ctx)
    creds = await ctx.off_loop(ctx.services.addon_data.credentials, addon)
    return [
        {
            "uuid": addon.id,
            "name": c["name"],
            "state": c["state"],
            "database": c["database"],
            "credentials": [{"user": c["user"], "state": c["state"], "connections": None}],
        }
        for c in creds
    ]


def _transfers(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.services
    app = s.apps.get(ctx.actor, ctx.params["app"])
    out: list[dict[str, Any]] = []
    for addon in s.addons.for_app(app.id):
        if s.addons.catalog.provider(addon.service.name).postgres() is None:
            continue
        for b in s.addon_data.backups(addon):
            out.append(
                {
                    "uuid": f"{addon.id}-{b.id}",
                    "num": int(b.id.lstrip("b") or 0),
                    "from_name": b.database,
                    "from_type": "pg_dump",
                    "to_type": "gof3r",
                    "created_at": b.created,
                    "started_at": b.created,
                    "finished_at": b.created,
                    "succeeded": True,
                    "canceled_at": None,
                    "warnings": 0,
                    "processed_bytes": b.size,
                    "source_bytes": b.size,
                }
            )
    return out


async def pg_transfers(ctx: Ctx) -> Any:
    """GET /client/v11/apps/{app}/transfers (`pg:backups`): the app's databases' backups,
    as finished pg_dump transfers."""
    return await ctx.off_loop(_transfers, ctx)


# -- Key-Value Store (/redis/v0) ------------------------------------------------------------
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


def routes() -> list[Route]:
    pg, kvs = "/client/v11/databases/{addon}", "/redis/v0/databases/{addon}"
    return [
        Route(pg, endpoint(pg_database), methods=["GET"]),
        Route(pg + "/wait_status", endpoint(pg_wait_status), methods=["GET"]),
        Route(pg + "/stats_reset", endpoint(pg_stats_reset), methods=["PUT"]),
        Route(
            "/postgres/v0/databases/{addon}/credentials",
            endpoint(pg_credentials),
            methods=["GET"],
        ),
        Route("/client/v11/apps/{app}/transfers", endpoint(pg_transfers), methods=["GET"]),
        Route(kvs, endpoint(redis_database), methods=["GET"]),
        Route(kvs + "/config", endpoint(redis_config), methods=["PATCH"]),
        Route(
            kvs + "/credentials_rotation", endpoint(redis_credentials_rotation), methods=["POST"]
        ),
        Route(kvs + "/wait", endpoint(redis_wait), methods=["GET"]),
    ]
