"""Automated Certificate Management: POST, DELETE and PATCH /apps/{app}/acm.

Enable, disable and refresh (certs:auto:enable, certs:auto:disable, certs:auto:refresh);
each answers with the app, whose `acm` says whether ACM is on.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.errors import InvalidParams

from .core_routes import APP, managed_app, the_app
from .http import Ctx, endpoint


def acm_enable(ctx: Ctx) -> Any:
    return APP.one(ctx, ctx.services.acm.enable(ctx.actor, managed_app(ctx).id))


def acm_disable(ctx: Ctx) -> Any:
    return APP.one(ctx, ctx.services.acm.disable(ctx.actor, managed_app(ctx).id))


def acm_refresh(ctx: Ctx) -> Any:
    refresh = ctx.field("acm_refresh", True)
    if not isinstance(refresh, bool):
        raise InvalidParams("acm_refresh must be true or false.")
    app = the_app(ctx)
    if not refresh:
        return APP.one(ctx, app)
    return APP.one(ctx, ctx.services.acm.refresh(ctx.actor, app.id))


def routes() -> list[Route]:
    path = "/apps/{app}/acm"
    return [
        Route(path, endpoint(acm_enable), methods=["POST"]),
        Route(path, endpoint(acm_disable), methods=["DELETE"]),
        Route(path, endpoint(acm_refresh), methods=["PATCH"]),
    ]
