"""The account's own resources: account features (labs), SSH keys, OAuth authorizations
(API keys), OAuth sessions (dashboard sign-ins) and OAuth clients."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.app_transfers import AppTransferView
from spruce.services.views import AuthorizationView, OAuthClientView, SshKeyView

from . import views
from .http import Ctx, api_key_from, endpoint, paginate


def key_json(k: SshKeyView) -> dict[str, Any]:
    return {
        "comment": k.comment,
        "created_at": views.ts(k.created_at),
        "email": k.email,
        "fingerprint": k.fingerprint,
        "id": k.id,
        "public_key": k.public_key,
        "updated_at": views.ts(k.updated_at),
    }


def authorization_json(a: AuthorizationView) -> dict[str, Any]:
    token = None
    if a.token is not None:
        token = {"expires_in": a.expires_in, "id": a.id, "token": a.token}
    return {
        "access_token": token,
        "client": None,
        "created_at": views.ts(a.created_at),
        "description": a.description,
        "grant": None,
        "id": a.id,
        "refresh_token": None,
        "scope": ["global"],
        "session": None,
        "updated_at": views.ts(a.updated_at),
        "user": {"email": a.user.email, "full_name": a.user.name, "id": a.user.id},
    }


def session_json(a: AuthorizationView) -> dict[str, Any]:
    return {
        "created_at": views.ts(a.created_at),
        "description": a.description,
        "expires_in": a.expires_in,
        "id": a.id,
        "updated_at": views.ts(a.updated_at),
    }


def client_json(c: OAuthClientView) -> dict[str, Any]:
    return {
        "created_at": views.ts(c.created_at),
        "id": c.id,
        "ignores_delinquent": False,
        "name": c.name,
        "redirect_uri": c.redirect_uri,
        "secret": c.secret,
        "updated_at": views.ts(c.updated_at),
    }


def transfer_json(t: AppTransferView) -> dict[str, Any]:
    return {
        "app": {"id": t.app.id, "name": t.app.name},
        "created_at": views.ts(t.created_at),
        "id": t.id,
        "owner": {"email": t.owner.name, "id": t.owner.id},
        "recipient": {"email": t.recipient.name, "id": t.recipient.id},
        "state": t.state,
        "updated_at": views.ts(t.updated_at),
    }


# -- app transfers --------------------------------------------------------------------------
def transfers_list(ctx: Ctx) -> Any:
    rows = ctx.services.app_transfers.list(ctx.actor)
    return paginate(ctx, [transfer_json(t) for t in rows], ("id",))


def transfers_info(ctx: Ctx) -> Any:
    return transfer_json(ctx.services.app_transfers.get(ctx.actor, ctx.params["transfer"]))


def transfers_create(ctx: Ctx) -> Any:
    app, recipient = ctx.field("app"), ctx.field("recipient")
    app = app.get("name") or app.get("id") if isinstance(app, dict) else app
    if isinstance(recipient, dict):
        recipient = recipient.get("email") or recipient.get("id")
    ctx.status = 201
    return transfer_json(ctx.services.app_transfers.create(ctx.actor, app, recipient))


def transfers_update(ctx: Ctx) -> Any:
    t = ctx.services.app_transfers.update(ctx.actor, ctx.params["transfer"], ctx.field("state"))
    return transfer_json(t)


def transfers_delete(ctx: Ctx) -> Any:
    return transfer_json(ctx.services.app_transfers.delete(ctx.actor, ctx.params["transfer"]))


# -- account features -----------------------------------------------------------------------
def account_features_list(ctx: Ctx) -> Any:
    feats = ctx.services.features.account.list(ctx.actor)
    return paginate(ctx, [views.feature_json(f) for f in feats], ("id", "name"), "name")


def account_features_info(ctx: Ctx) -> Any:
    return views.feature_json(ctx.services.features.account.get(ctx.actor, ctx.params["feature"]))


def account_features_update(ctx: Ctx) -> Any:
    f = ctx.services.features.account.update(ctx.actor, ctx.params["feature"], ctx.field("enabled"))
    return views.feature_json(f)


# -- SSH keys -------------------------------------------------------------------------------
def keys_list(ctx: Ctx) -> Any:
    keys = ctx.services.credentials.ssh_keys(ctx.actor)
    return paginate(ctx, [key_json(k) for k in keys], ("id", "fingerprint"), "id")


def keys_info(ctx: Ctx) -> Any:
    return key_json(ctx.services.credentials.ssh_key(ctx.actor, ctx.params["key"]))


def keys_create(ctx: Ctx) -> Any:
    ctx.status = 201
    return key_json(ctx.services.credentials.add_ssh_key(ctx.actor, ctx.field("public_key")))


def keys_delete(ctx: Ctx) -> Any:
    return key_json(ctx.services.credentials.remove_ssh_key(ctx.actor, ctx.params["key"]))


# -- OAuth authorizations and sessions ------------------------------------------------------
def authorizations_list(ctx: Ctx) -> Any:
    rows = ctx.services.credentials.authorizations(ctx.actor)
    return paginate(ctx, [authorization_json(a) for a in rows], ("id",))


def authorizations_info(ctx: Ctx) -> Any:
    a = ctx.services.credentials.authorization(
        ctx.actor, ctx.params["authorization"], api_key_from(ctx.request)
    )
    return authorization_json(a)


def authorizations_create(ctx: Ctx) -> Any:
    a = ctx.services.credentials.create_authorization(
        ctx.actor, ctx.field("description"), ctx.field("expires_in")
    )
    ctx.status = 201
    return authorization_json(a)


def authorizations_update(ctx: Ctx) -> Any:
    a = ctx.services.credentials.update_authorization(
        ctx.actor, ctx.params["authorization"], ctx.field("description")
    )
    return authorization_json(a)


def authorizations_regenerate(ctx: Ctx) -> Any:
    a = ctx.services.credentials.regenerate(ctx.actor, ctx.params["authorization"])
    return authorization_json(a)


def authorizations_delete(ctx: Ctx) -> Any:
    a = ctx.services.credentials.revoke(ctx.actor, ctx.params["authorization"])
    return authorization_json(a)


def sessions_list(ctx: Ctx) -> Any:
    rows = ctx.services.credentials.sessions(ctx.actor)
    return paginate(ctx, [session_json(a) for a in rows], ("id",))


def sessions_delete(ctx: Ctx) -> Any:
    a = ctx.services.credentials.end_session(
        ctx.actor, ctx.params["session"], api_key_from(ctx.request)
    )
    return session_json(a)


# -- OAuth clients --------------------------------------------------------------------------
def clients_list(ctx: Ctx) -> Any:
    rows = ctx.services.credentials.clients(ctx.actor)
    return paginate(ctx, [client_json(c) for c in rows], ("id", "name"))


def clients_info(ctx: Ctx) -> Any:
    return client_json(ctx.services.credentials.client(ctx.actor, ctx.params["client"]))


def clients_create(ctx: Ctx) -> Any:
    c = ctx.services.credentials.create_client(
        ctx.actor, ctx.field("name"), ctx.field("redirect_uri")
    )
    ctx.status = 201
    return client_json(c)


def clients_update(ctx: Ctx) -> Any:
    c = ctx.services.credentials.update_client(
        ctx.actor, ctx.params["client"], ctx.field("name"), ctx.field("redirect_uri")
    )
    return client_json(c)


def clients_rotate(ctx: Ctx) -> Any:
    return client_json(ctx.services.credentials.rotate_client(ctx.actor, ctx.params["client"]))


def clients_delete(ctx: Ctx) -> Any:
    return client_json(ctx.services.credentials.delete_client(ctx.actor, ctx.params["client"]))


def routes() -> list[Route]:
    F, K = "/account/features", "/account/keys"
    AU, C = "/oauth/authorizations", "/oauth/clients"
    X = "/account/app-transfers"
    return [
        Route(X, endpoint(transfers_list), methods=["GET"]),
        Route(X, endpoint(transfers_create), methods=["POST", "PUT"]),
        Route(X + "/{transfer}", endpoint(transfers_info), methods=["GET"]),
        Route(X + "/{transfer}", endpoint(transfers_update), methods=["PATCH"]),
        Route(X + "/{transfer}", endpoint(transfers_delete), methods=["DELETE"]),
        Route(F, endpoint(account_features_list), methods=["GET"]),
        Route(F + "/{feature}", endpoint(account_features_info), methods=["GET"]),
        Route(F + "/{feature}", endpoint(account_features_update), methods=["PATCH"]),
        Route(K, endpoint(keys_list), methods=["GET"]),
        Route(K, endpoint(keys_create), methods=["POST"]),
        Route(K + "/{key:path}", endpoint(keys_info), methods=["GET"]),
        Route(K + "/{key:path}", endpoint(keys_delete), methods=["DELETE"]),
        Route(AU, endpoint(authorizations_list), methods=["GET"]),
        Route(AU, endpoint(authorizations_create), methods=["POST"]),
        Route(AU + "/{authorization}", endpoint(authorizations_info), methods=["GET"]),
        Route(AU + "/{authorization}", endpoint(authorizations_update), methods=["PATCH"]),
        Route(AU + "/{authorization}", endpoint(authorizations_delete), methods=["DELETE"]),
        Route(
            AU + "/{authorization}/actions/regenerate-tokens",
            endpoint(authorizations_regenerate),
            methods=["POST"],
        ),
        Route("/oauth/sessions", endpoint(sessions_list), methods=["GET"]),
        Route("/oauth/sessions/{session}", endpoint(sessions_delete), methods=["DELETE"]),
        Route(C, endpoint(clients_list), methods=["GET"]),
        Route(C, endpoint(clients_create), methods=["POST"]),
        Route(C + "/{client}", endpoint(clients_info), methods=["GET"]),
        Route(C + "/{client}", endpoint(clients_update), methods=["PATCH"]),
        Route(C + "/{client}", endpoint(clients_delete), methods=["DELETE"]),
        Route(
            C + "/{client}/actions/rotate-credentials", endpoint(clients_rotate), methods=["POST"]
        ),
    ]
