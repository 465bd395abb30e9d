"""Domains and SNI endpoints."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import views
from .core_routes import managed_app, the_app
from .http import Ctx, endpoint, paginate


def domains_list(ctx: Ctx) -> Any:
    items = [views.domain_json(d) for d in ctx.services.domains.list(the_app(ctx).id)]
    return paginate(ctx, items, ("id", "hostname"), "hostname", {"domain": "hostname"})


def domains_create(ctx: Ctx) -> Any:
    d = ctx.services.domains.add(
        ctx.actor, managed_app(ctx).id, ctx.field("hostname"), ctx.field("sni_endpoint")
    )
    ctx.status = 201
    return views.domain_json(d)


def domains_info(ctx: Ctx) -> Any:
    return views.domain_json(ctx.services.domains.get(the_app(ctx).id, ctx.params["domain"]))


def domains_update(ctx: Ctx) -> Any:
    d = ctx.services.domains.update(
        ctx.actor, managed_app(ctx).id, ctx.params["domain"], ctx.field("sni_endpoint")
    )
    return views.domain_json(d)


def domains_delete(ctx: Ctx) -> Any:
    d = ctx.services.domains.remove(ctx.actor, managed_app(ctx).id, ctx.params["domain"])
    return views.domain_json(d)


def sni_list(ctx: Ctx) -> Any:
    items = [views.sni_json(e) for e in ctx.services.certs.list(the_app(ctx).id)]
    return paginate(ctx, items, ("id", "name"), "name")


def sni_create(ctx: Ctx) -> Any:
    e = ctx.services.certs.add(
        ctx.actor, managed_app(ctx).id, ctx.field("certificate_chain"), ctx.field("private_key")
    )
    ctx.status = 201
    return views.sni_json(e)


def sni_info(ctx: Ctx) -> Any:
    return views.sni_json(ctx.services.certs.get(the_app(ctx).id, ctx.params["sni"]))


def sni_update(ctx: Ctx) -> Any:
    e = ctx.services.certs.update(
        ctx.actor,
        managed_app(ctx).id,
        ctx.params["sni"],
        ctx.field("certificate_chain"),
        ctx.field("private_key"),
    )
    return views.sni_json(e)


def sni_delete(ctx: Ctx) -> Any:
    e = ctx.services.certs.remove(ctx.actor, managed_app(ctx).id, ctx.params["sni"])
    return views.sni_json(e)


def routes() -> list[Route]:
    A = "/apps/{app}"
    return [
        Route(A + "/domains", endpoint(domains_list), methods=["GET"]),
        Route(A + "/domains", endpoint(domains_create), methods=["POST"]),
        Route(A + "/domains/{domain}", endpoint(domains_info), methods=["GET"]),
        Route(A + "/domains/{domain}", endpoint(domains_update), methods=["PATCH"]),
        Route(A + "/domains/{domain}", endpoint(domains_delete), methods=["DELETE"]),
        Route(A + "/sni-endpoints", endpoint(sni_list), methods=["GET"]),
        Route(A + "/sni-endpoints", endpoint(sni_create), methods=["POST"]),
        Route(A + "/sni-endpoints/{sni}", endpoint(sni_info), methods=["GET"]),
        Route(A + "/sni-endpoints/{sni}", endpoint(sni_update), methods=["PATCH"]),
        Route(A + "/sni-endpoints/{sni}", endpoint(sni_delete), methods=["DELETE"]),
    ]
