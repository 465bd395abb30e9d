"""Spaces, their NAT and rulesets, and generations: /spaces, /generations."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.logs import SpaceDrainView
from spruce.services.regions import GENERATIONS, find_generation
from spruce.services.spaces import INBOUND, OUTBOUND, RulesetView, SpaceView

from . import views
from .http import Ctx, endpoint, paginate


def space_json(ctx: Ctx, sp: SpaceView) -> dict[str, Any]:
    region = ctx.services.regions.get(sp.region)
    expand = "region" in ctx.request.headers.get("accept-expansion", "")
    return {
        "id": sp.id,
        "name": sp.name,
        "organization": {"name": sp.team.name},
        "team": {"id": sp.team.id, "name": sp.team.name},
        "region": views.region_json(region.name, region)
        if expand
        else {"id": region.id, "name": region.name},
        "shield": sp.shield,
        "state": sp.state,
        "cidr": sp.cidr,
        "data_cidr": sp.data_cidr,
        "generation": views.generation_json(sp.generation),
        "created_at": views.ts(sp.created_at),
        "updated_at": views.ts(sp.updated_at),
    }


def ruleset_json(r: RulesetView) -> dict[str, Any]:
    return {
        "id": r.id,
        "space": {"id": r.space.id, "name": r.space.name},
        "rules": [dict(x) for x in r.rules],
        "created_by": r.created_by,
        "created_at": views.ts(r.created_at),
        # The router enforces inbound rules; outbound ones are only stored (docs/fir.md).
        "applied": r.direction == INBOUND,
    }


def _name_of(value: Any) -> Any:
    return value.get("name") or value.get("id") if isinstance(value, dict) else value


def spaces_list(ctx: Ctx) -> Any:
    rows = [space_json(ctx, sp) for sp in ctx.services.spaces.list_for(ctx.actor)]
    return paginate(ctx, rows, ("id", "name"), "name")


def spaces_create(ctx: Ctx) -> Any:
    sp = ctx.services.spaces.create(
        ctx.actor,
        ctx.field("name"),
        _name_of(ctx.field("team") or ctx.field("organization")),
        region=_name_of(ctx.field("region")),
        generation=_name_of(ctx.field("generation")),
        cidr=ctx.field("cidr"),
        data_cidr=ctx.field("data_cidr"),
        shield=ctx.field("shield"),
        log_drain_url=ctx.field("log_drain_url"),
    )
    ctx.status = 201
    return space_json(ctx, sp)


def spaces_info(ctx: Ctx) -> Any:
    return space_json(ctx, ctx.services.spaces.get(ctx.actor, ctx.params["space"]))


def spaces_update(ctx: Ctx) -> Any:
    sp = ctx.services.spaces.rename(ctx.actor, ctx.params["space"], ctx.field("name"))
    return space_json(ctx, sp)


def spaces_delete(ctx: Ctx) -> Any:
    return space_json(ctx, ctx.services.spaces.delete(ctx.actor, ctx.params["space"]))


def space_nat(ctx: Ctx) -> Any:
    """Spruce has no NAT gateway of its own: dynos leave through the host's addresses."""
    sp = ctx.services.spaces.get(ctx.actor, ctx.params["space"])
    return {
        "state": "disabled",
        "sources": [],
        "created_at": views.ts(sp.created_at),
        "updated_at": views.ts(sp.updated_at),
    }


def _direction(ctx: Ctx) -> str:
    return INBOUND if "/inbound-" in ctx.request.url.path else OUTBOUND


def ruleset_current(ctx: Ctx) -> Any:
    r = ctx.services.spaces.ruleset(ctx.actor, ctx.params["space"], _direction(ctx))
    return ruleset_json(r)


def ruleset_put(ctx: Ctx) -> Any:
    r = ctx.services.spaces.set_ruleset(
        ctx.actor, ctx.params["space"], _direction(ctx), ctx.field("rules")
    )
    return ruleset_json(r)


def rulesets_list(ctx: Ctx) -> Any:
    rows = ctx.services.spaces.rulesets(ctx.actor, ctx.params["space"], _direction(ctx))
    return [ruleset_json(r) for r in rows]  # oldest first, as they were put


def ruleset_info(ctx: Ctx) -> Any:
    r = ctx.services.spaces.ruleset_info(
        ctx.actor, ctx.params["space"], _direction(ctx), ctx.params["ruleset"]
    )
    return ruleset_json(r)


def generations_list(ctx: Ctx) -> Any:
    return [views.generation_full_json(g) for g in GENERATIONS]


def generations_info(ctx: Ctx) -> Any:
    return views.generation_full_json(find_generation(ctx.params["generation"]))


def _space_drain_json(d: SpaceDrainView) -> dict[str, Any]:
    return {
        "addon": None,
        "created_at": views.ts(d.created_at),
        "id": d.id,
        "token": d.token,
        "updated_at": views.ts(d.updated_at),
        "url": d.url,
    }


def space_drain_get(ctx: Ctx) -> Any:
    return _space_drain_json(ctx.services.logs.space_drain(ctx.actor, ctx.params["space"]))


async def space_drain_put(ctx: Ctx) -> Any:
    # On the loop, as drains_create: the log router starts the apps' drain workers there.
    d = ctx.services.logs.set_space_drain(ctx.actor, ctx.params["space"], ctx.field("url"))
    return _space_drain_json(d)


def routes() -> list[Route]:
    S = "/spaces/{space}"
    out = [
        Route("/spaces", endpoint(spaces_list), methods=["GET"]),
        Route("/spaces", endpoint(spaces_create), methods=["POST"]),
        Route(S, endpoint(spaces_info), methods=["GET"]),
        Route(S, endpoint(spaces_update), methods=["PATCH"]),
        Route(S, endpoint(spaces_delete), methods=["DELETE"]),
        Route(S + "/nat", endpoint(space_nat), methods=["GET"]),
        Route(S + "/log-drain", endpoint(space_drain_get), methods=["GET"]),
        Route(S + "/log-drain", endpoint(space_drain_put), methods=["PUT"]),
        Route("/generations", endpoint(generations_list), methods=["GET"]),
        Route("/generations/{generation}", endpoint(generations_info), methods=["GET"]),
    ]
    for d in (INBOUND, OUTBOUND):
        out += [
            Route(f"{S}/{d}-ruleset", endpoint(ruleset_current), methods=["GET"]),
            Route(f"{S}/{d}-ruleset", endpoint(ruleset_put), methods=["PUT"]),
            Route(f"{S}/{d}-rulesets", endpoint(rulesets_list), methods=["GET"]),
            Route(f"{S}/{d}-rulesets/{{ruleset}}", endpoint(ruleset_info), methods=["GET"]),
        ]
    return out
