"""Heroku-shaped JSON for each resource (shapes from the Platform API schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spruce.services.catalog import REGIONS, STACKS, FeatureInfo, find_size
from spruce.store.models import App, Collaborator, Formation, Release, Slug, User

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def region_json(name: str) -> dict[str, Any]:
    r = next(r for r in REGIONS if r["name"] == name)
    return {**r, "created_at": ts(EPOCH), "updated_at": ts(EPOCH)}


def stack_json(name: str) -> dict[str, Any]:
    st = next(s for s in STACKS if s["name"] == name)
    return {**st, "created_at": ts(EPOCH), "updated_at": ts(EPOCH)}


def ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": obj["id"], "name": obj["name"]}


def account_json(user: User) -> dict[str, Any]:
    return {
        "allow_tracking": False,
        "beta": False,
        "country_of_residence": None,
        "created_at": ts(user.created_at),
        "default_organization": None,
        "default_team": None,
        "delinquent_at": None,
        "email": user.email,
        "federated": False,
        "id": user.id,
        "identity_provider": None,
        "last_login": ts(user.last_login),
        "name": user.name,
        "sms_number": None,
        "suspended_at": None,
        "two_factor_authentication": False,
        "updated_at": ts(user.updated_at),
        "verified": True,
    }


def app_json(app: App, owner: User, urls: dict[str, str]) -> dict[str, Any]:
    return {
        "acm": app.acm,
        "archived_at": None,
        "buildpack_provided_description": app.buildpack_provided_description,
        "build_stack": ref(stack_json(app.build_stack)),
        "created_at": ts(app.created_at),
        "generation": {"id": _generation_id(app.generation), "name": app.generation},
        "git_url": f"{urls['git_url'].rstrip('/')}/{app.name}.git",
        "id": app.id,
        "internal_routing": None,
        "maintenance": app.maintenance,
        "name": app.name,
        "organization": None,
        "owner": {"email": owner.email, "id": owner.id},
        "region": ref(region_json(app.region)),
        "released_at": ts(app.released_at),
        "repo_size": app.repo_size,
        "slug_size": app.slug_size,
        "space": None,
        "stack": ref(stack_json(app.stack)),
        "team": None,
        "updated_at": ts(app.updated_at),
        "web_url": web_url(app, urls),
    }


def web_url(app: App, urls: dict[str, str]) -> str:
    return urls["web_url_template"].format(app=app.name)


def _generation_id(name: str) -> str:
    return {
        "cedar": "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c01",
        "fir": "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c02",
    }.get(name, "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c01")


def release_json(
    release: Release,
    app: App,
    user: User | None,
    current: bool,
    slug: Slug | None,
    output_stream_url: str | None = None,
) -> dict[str, Any]:
    return {
        "addon_plan_names": list(release.addon_plan_names or []),
        "app": {"id": app.id, "name": app.name},
        "created_at": ts(release.created_at),
        "current": current,
        "description": release.description,
        "id": release.id,
        "output_stream_url": output_stream_url,
        "slug": {"id": slug.id} if slug else None,
        "status": release.status,
        "updated_at": ts(release.updated_at),
        "user": {
            "email": user.email if user else "",
            "id": user.id if user else "00000000-0000-0000-0000-000000000000",
        },
        "version": release.version,
    }


def formation_json(f: Formation, app: App) -> dict[str, Any]:
    size = find_size(f.size)
    return {
        "app": {"id": app.id, "name": app.name},
        "command": f.command,
        "created_at": ts(f.created_at),
        "dyno_size": {"id": size.id if size else None, "name": f.size},
        "id": f.id,
        "quantity": f.quantity,
        "size": _display_size(f.size),
        "type": f.type,
        "updated_at": ts(f.updated_at),
    }


def _display_size(name: str) -> str:
    # Heroku spells the professional sizes "Standard-1X"; eco and basic are lower-case words.
    if name.startswith("standard-"):
        return "Standard-" + name.split("-", 1)[1].upper()
    if name.startswith("performance-"):
        return "Performance-" + name.split("-", 1)[1].upper()
    return name.capitalize() if name in ("eco", "basic") else name


def feature_json(f: FeatureInfo, enabled: bool) -> dict[str, Any]:
    return {
        "created_at": ts(EPOCH),
        "description": f.description,
        "display_name": f.display_name,
        "doc_url": f.doc_url,
        "enabled": enabled,
        "feedback_email": "",
        "id": f.id,
        "name": f.name,
        "state": f.state,
        "updated_at": ts(EPOCH),
    }


def collaborator_json(c: Collaborator | None, user: User, app: App) -> dict[str, Any]:
    return {
        "app": {"id": app.id, "name": app.name},
        "created_at": ts(c.created_at if c else app.created_at),
        "id": c.id if c else app.id,
        "permissions": [
            {"name": p, "description": f"Can {p} the app"}
            for p in (c.permissions if c else ["deploy", "manage", "operate", "view"])
        ],
        "role": "collaborator" if c else "owner",
        "updated_at": ts(c.updated_at if c else app.updated_at),
        "user": {"email": user.email, "federated": False, "id": user.id},
    }


def slug_json(slug: Slug, blob: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "blob": blob or {"method": "get", "url": ""},
        "buildpack_provided_description": slug.buildpack_provided_description,
        "checksum": slug.checksum,
        "commit": slug.commit,
        "commit_description": slug.commit_description,
        "created_at": ts(slug.created_at),
        "id": slug.id,
        "process_types": dict(slug.process_types or {}),
        "size": slug.size,
        "stack": ref(stack_json(slug.stack)),
        "updated_at": ts(slug.updated_at),
    }
