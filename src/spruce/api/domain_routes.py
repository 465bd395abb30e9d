"""Domains and SNI endpoints."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.certs import inspect_chain
from spruce.store.models import App, Domain, SniEndpoint

from .core_routes import the_app
from .http import Ctx, endpoint, paginate
from .views import ts


def domain_json(ctx: Ctx, d: Domain, app: App) -> dict[str, Any]:
    sni = None
    if d.sni_endpoint_id:
        try:
            e = ctx.services.certs.get(app.id, d.sni_endpoint_id)
            sni = {"id": e.id, "name": e.name}
        except Exception:
            sni = None
    return {
        "acm_status": d.acm_status,
        "acm_status_reason": d.acm_status_reason,
        "app": {"id": app.id, "name": app.name},
        "cname": d.cname,
        "created_at": ts(d.created_at),
        "hostname": d.hostname,
        "id": d.id,
        "kind": d.kind,
        "sni_endpoint": sni,
        "status": d.status,
        "updated_at": ts(d.updated_at),
    }


def default_domain_json(ctx: Ctx, app: App) -> dict[str, Any]:
    """The app's own hostname, listed like Heroku lists <app>.herokuapp.com (kind heroku)."""
    import uuid

    host = f"{app.name}.{ctx.services.domains.app_domain}"
    return {
        "acm_status": None,
        "acm_status_reason": None,
        "app": {"id": app.id, "name": app.name},
        "cname": None,
        "created_at": ts(app.created_at),
        "hostname": host,
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, app.id)),
        "kind": "heroku",
        "sni_endpoint": None,
        "status": "succeeded",
        "updated_at": ts(app.updated_at),
    }


async def domains_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    items = [default_domain_json(ctx, app)] + [
        domain_json(ctx, d, app) for d in ctx.services.domains.list(app.id)
    ]
    return paginate(ctx, items, ("id", "hostname"), "hostname")


async def domains_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    d = ctx.services.domains.add(
        ctx.actor, app.id, app.name, ctx.field("hostname"), ctx.field("sni_endpoint")
    )
    ctx.status = 201
    return domain_json(ctx, d, app)


async def domains_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    ident = ctx.params["domain"].lower()
    if ident == f"{app.name}.{ctx.services.domains.app_domain}":
        return default_domain_json(ctx, app)
    return domain_json(ctx, ctx.services.domains.get(app.id, ident), app)


async def domains_update(ctx: Ctx) -> Any:
    app = the_app(ctx)
    d = ctx.services.domains.update(
        ctx.actor, app.id, ctx.params["domain"], ctx.field("sni_endpoint")
    )
    return domain_json(ctx, d, app)


async def domains_delete(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return domain_json(
        ctx, ctx.services.domains.remove(ctx.actor, app.id, ctx.params["domain"]), app
    )


def sni_json(ctx: Ctx, e: SniEndpoint, app: App) -> dict[str, Any]:
    info = inspect_chain(e.certificate_chain, e.private_key)
    return {
        "app": {"id": app.id, "name": app.name},
        "certificate_chain": e.certificate_chain,
        "created_at": ts(e.created_at),
        "domains": [d.id for d in ctx.services.certs.domains_of(e)],
        "id": e.id,
        "name": e.name,
        "ssl_cert": {
            "ca_signed?": not info.self_signed,
            "cert_domains": info.cert_domains,
            "expires_at": ts(info.expires_at),
            "id": e.id,
            "issuer": info.issuer,
            "self_signed?": info.self_signed,
            "starts_at": ts(info.starts_at),
            "subject": info.subject,
        },
        "updated_at": ts(e.updated_at),
    }


async def sni_list(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return paginate(
        ctx,
        [sni_json(ctx, e, app) for e in ctx.services.certs.list(app.id)],
        ("id", "name"),
        "name",
    )


async def sni_create(ctx: Ctx) -> Any:
    app = the_app(ctx)
    e = ctx.services.certs.add(
        ctx.actor, app.id, ctx.field("certificate_chain"), ctx.field("private_key")
    )
    ctx.status = 201
    return sni_json(ctx, e, app)


async def sni_info(ctx: Ctx) -> Any:
    app = the_app(ctx)
    return sni_json(ctx, ctx.services.certs.get(app.id, ctx.params["sni"]), app)


async def sni_update(ctx: Ctx) -> Any:
    app = the_app(ctx)
    e = ctx.services.certs.update(
        ctx.actor,
        app.id,
        ctx.params["sni"],
        ctx.field("certificate_chain"),
        ctx.field("private_key"),
    )
    return sni_json(ctx, e, app)


async def sni_delete(ctx: Ctx) -> Any:
    app = the_app(ctx)
    e = ctx.services.certs.get(app.id, ctx.params["sni"])
    out = sni_json(ctx, e, app)
    ctx.services.certs.remove(ctx.actor, app.id, e.id)
    return out


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
