"""Heroku Exec's manager (`HEROKU_EXEC_URL`, served over TLS by `spruce up --exec-host`).

Heroku's CLI sends the app's name as the Basic user and the API key as the password:
- `GET /api/v2`: the dynos Heroku Exec reaches (`ps:exec --status`);
- `PUT /api/v2/{dyno}` `{"client_key": "ssh-rsa ..."}`: a session's SSH login for that dyno.
The rules are spruce.services.heroku_exec's.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.routing import Route

from .http import Ctx, endpoint


def _app_name(ctx: Ctx) -> str:
    """Heroku's CLI names the app as the Basic user; Spruce's CLI (a bearer key) as `?app=`."""
    scheme, _, value = ctx.request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ctx.request.query_params.get("app", "")
    try:
        return base64.b64decode(value.strip()).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


async def exec_status(ctx: Ctx) -> Any:
    hx = ctx.services.heroku_exec
    app = await ctx.off_loop(hx.app_for, ctx.actor, _app_name(ctx))
    return [{"dyno_name": r.dyno_name} for r in hx.reservations(app)]


async def exec_session(ctx: Ctx) -> Any:
    hx = ctx.services.heroku_exec
    app = await ctx.off_loop(hx.app_for, ctx.actor, _app_name(ctx))
    s = hx.open_session(ctx.actor, app, ctx.params["dyno"], ctx.field("client_key"))
    return {
        "tunnel_host": s.tunnel_host,
        "client_user": s.client_user,
        "proxy_public_key": s.proxy_public_key,
        "dyno_ip": s.dyno_ip,
        "dyno_name": s.dyno_name,
    }


def routes() -> list[Route]:
    return [
        Route("/api/v2", endpoint(exec_status), methods=["GET"]),
        Route("/api/v2/{dyno}", endpoint(exec_session), methods=["PUT"]),
    ]
