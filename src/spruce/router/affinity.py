"""Session affinity (`http-session-affinity`): a signed cookie naming a dyno.

The value is an HMAC of (app id, dyno name, dyno address) under the table's secret, so it
reveals nothing, cannot be forged, is useless on another app, and stops matching when the
dyno is replaced (the router then picks a dyno and sends an updated cookie).
"""

from __future__ import annotations

import hashlib
import hmac

from .table import App, Dyno

COOKIE_NAME = "heroku-session-affinity"
MAX_AGE = 86400


def dyno_token(secret: bytes, app: App, dyno: Dyno) -> str:
    msg = f"{app.id}\x00{dyno.name}\x00{dyno.host}\x00{dyno.port}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:40]


def cookie_value(headers: list[tuple[str, str]]) -> str | None:
    for k, v in headers:
        if k.lower() != "cookie":
            continue
        for part in v.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE_NAME:
                return value.strip()
    return None


def find_dyno(secret: bytes, app: App, candidates: list[Dyno], token: str) -> Dyno | None:
    if not secret or len(token) != 40:
        return None
    for dyno in candidates:
        if hmac.compare_digest(dyno_token(secret, app, dyno), token):
            return dyno
    return None


def set_cookie_header(secret: bytes, app: App, dyno: Dyno) -> tuple[str, str]:
    return (
        "Set-Cookie",
        f"{COOKIE_NAME}={dyno_token(secret, app, dyno)}; Path=/; Max-Age={MAX_AGE}; HttpOnly",
    )
