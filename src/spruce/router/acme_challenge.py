"""HTTP-01 answers: `GET /.well-known/acme-challenge/<token>` on the HTTP port, for any Host.

ACM's order records put their tokens in the apps' route entries (`acme_challenges`), so every
worker answers them, with whichever Host the CA sends, before any app routing, and keeps
answering with its last table while the control plane restarts. A token that is not ACM's
goes on to the app as any request does (an app may run its own ACME client).
"""

from __future__ import annotations

from .table import RouteTable

PREFIX = "/.well-known/acme-challenge/"


def answer(method: str, target: str, table: RouteTable) -> bytes | None:
    """The body to answer 200 text/plain with, or None when this is no ACM challenge."""
    if method != "GET" or not target.startswith(PREFIX):
        return None
    token = target[len(PREFIX) :].split("?", 1)[0]
    if not token or "/" in token:
        return None
    for app in table.apps.values():  # (tokens are few and so are these requests)
        key_authorization = app.acme_challenges.get(token)
        if key_authorization is not None:
            return key_authorization.encode("ascii", "replace")
    return None
