"""Teams, their members and team apps: /teams, /teams/{team}/members, /teams/apps."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.app_access import DESCRIPTIONS
from spruce.services.collaborators import TeamAppView
from spruce.services.errors import InvalidParams
from spruce.services.regions import GENERATIONS
from spruce.services.teams import TeamMemberView, TeamView
from spruce.services.views import AppView

from . import views
from .core_routes import (
    collaborators_create,
    collaborators_delete,
    collaborators_info,
    collaborators_list,
    collaborators_update,
)
from .http import Ctx, endpoint, paginate


def team_json(t: TeamView) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "created_at": views.ts(t.created_at),
        "updated_at": views.ts(t.updated_at),
        "credit_card_collections": False,
        "default": False,
        "enterprise_account": None,
        "identity_provider": None,
        "membership_limit": None,
        "provisioned_licenses": False,
        "role": t.role,
        "type": "team",
    }


def member_json(m: TeamMemberView) -> dict[str, Any]:
    return {
        "id": m.id,
        "email": m.email,
        "role": m.role,
        "federated": False,
        "identity_provider": None,
        "two_factor_authentication": False,
        "user": {"id": m.user_id, "email": m.email, "name": None},
        "created_at": views.ts(m.created_at),
        "updated_at": views.ts(m.updated_at),
    }


def team_app_json(app: AppView, joined: bool = False, locked: bool = False) -> dict[str, Any]:
    return views.app_json(app) | {"joined": joined, "locked": locked}


def _team_app(t: TeamAppView) -> dict[str, Any]:
    return team_app_json(t.app, t.joined, t.locked)


def teams_list(ctx: Ctx) -> Any:
    rows = [team_json(t) for t in ctx.services.teams.list_for(ctx.actor)]
    return paginate(ctx, rows, ("id", "name"), "name")


def teams_create(ctx: Ctx) -> Any:
    ctx.status = 201
    return team_json(ctx.services.teams.create(ctx.actor, ctx.field("name")))


def teams_info(ctx: Ctx) -> Any:
    return team_json(ctx.services.teams.get(ctx.actor, ctx.params["team"]))


def teams_delete(ctx: Ctx) -> Any:
    return team_json(ctx.services.teams.delete(ctx.actor, ctx.params["team"]))


def members_list(ctx: Ctx) -> Any:
    rows = [member_json(m) for m in ctx.services.teams.members(ctx.actor, ctx.params["team"])]
    return paginate(ctx, rows, ("email", "id"), "email")


def _set_member(ctx: Ctx, create_only: bool) -> Any:
    who = ctx.field("email") or ctx.field("user")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    m = ctx.services.teams.set_member(
        ctx.actor, ctx.params["team"], who, ctx.field("role", "member"), create_only
    )
    if create_only:
        ctx.status = 201
    return member_json(m)


def members_put(ctx: Ctx) -> Any:
    return _set_member(ctx, create_only=False)


def members_post(ctx: Ctx) -> Any:
    return _set_member(ctx, create_only=True)


def members_delete(ctx: Ctx) -> Any:
    m = ctx.services.teams.remove_member(ctx.actor, ctx.params["team"], ctx.params["member"])
    return member_json(m)


def _name_of(value: Any) -> Any:
    return value.get("name") or value.get("id") if isinstance(value, dict) else value


def team_apps_create(ctx: Ctx) -> Any:
    """POST /teams/apps (`heroku apps:create --team T [--space S]`)."""
    name = ctx.field("name")
    if name is not None and not isinstance(name, str):
        raise InvalidParams("name must be a string.")
    team = _name_of(ctx.field("team") or ctx.field("organization"))
    space = _name_of(ctx.field("space"))
    if not team and not space:
        raise InvalidParams("team (or space) is required for a team app.")
    gen = _name_of(ctx.field("generation"))
    placement = ctx.services.spaces.placement(ctx.actor, team, space, gen)
    app = ctx.services.apps.create(
        ctx.actor,
        name or None,
        _name_of(ctx.field("region")),
        _name_of(ctx.field("stack")),
        placement=placement,
    )
    ctx.status = 201
    return team_app_json(app)


def team_apps_info(ctx: Ctx) -> Any:
    return _team_app(ctx.services.collaborators.team_app(ctx.actor, ctx.params["app"]))


def team_apps_update(ctx: Ctx) -> Any:
    """PATCH /teams/apps/{app}: `locked` (`heroku apps:lock`/`unlock`)."""
    app = ctx.params["app"]
    return _team_app(ctx.services.collaborators.set_locked(ctx.actor, app, ctx.field("locked")))


def team_permissions(ctx: Ctx) -> Any:
    """GET /teams/permissions: the app permissions a team member can hold."""
    return [{"name": str(p), "description": d} for p, d in sorted(DESCRIPTIONS.items())]


def team_apps_list(ctx: Ctx) -> Any:
    team = ctx.services.teams.get(ctx.actor, ctx.params["team"])
    apps = ctx.services.collaborators.team_apps(ctx.actor, team.id)
    return paginate(ctx, [_team_app(a) for a in apps], ("id", "name", "updated_at"), "name")


def available_generations(ctx: Ctx) -> Any:
    ctx.services.teams.get(ctx.actor, ctx.params["team"])
    return [views.generation_full_json(g) for g in GENERATIONS]


def team_features(ctx: Ctx) -> Any:
    """Per-app permissions are on for every team (`org-access-controls`: Heroku's CLI then
    sends them with `access:add`); no invitation feature, members are added directly."""
    team = ctx.services.teams.get(ctx.actor, ctx.params["team"])
    return [
        {
            "id": "org-access-controls",
            "name": "org-access-controls",
            "display_name": "App permissions",
            "description": "View, deploy, operate and manage permissions per app.",
            "doc_url": "",
            "enabled": True,
            "state": "general",
            "created_at": views.ts(team.created_at),
            "updated_at": views.ts(team.updated_at),
        }
    ]


def team_invitations(ctx: Ctx) -> Any:
    """Members are added directly; there are never pending invitations."""
    ctx.services.teams.get(ctx.actor, ctx.params["team"])
    return []


def routes() -> list[Route]:
    T = "/teams/{team}"
    TA = "/teams/apps/{app}"
    return [
        Route("/teams", endpoint(teams_list), methods=["GET"]),
        Route("/teams", endpoint(teams_create), methods=["POST"]),
        Route("/teams/apps", endpoint(team_apps_create), methods=["POST"]),
        Route("/teams/permissions", endpoint(team_permissions), methods=["GET"]),
        Route("/teams/apps/{app}", endpoint(team_apps_info), methods=["GET"]),
        Route("/teams/apps/{app}", endpoint(team_apps_update), methods=["PATCH"]),
        Route(TA + "/collaborators", endpoint(collaborators_list), methods=["GET"]),
        Route(TA + "/collaborators", endpoint(collaborators_create), methods=["POST"]),
        Route(TA + "/collaborators/{collaborator}", endpoint(collaborators_info), methods=["GET"]),
        Route(
            TA + "/collaborators/{collaborator}",
            endpoint(collaborators_update),
            methods=["PATCH"],
        ),
        Route(
            TA + "/collaborators/{collaborator}",
            endpoint(collaborators_delete),
            methods=["DELETE"],
        ),
        Route(T, endpoint(teams_info), methods=["GET"]),
        Route(T, endpoint(teams_delete), methods=["DELETE"]),
        Route(T + "/members", endpoint(members_list), methods=["GET"]),
        Route(T + "/members", endpoint(members_put), methods=["PUT", "PATCH"]),
        Route(T + "/members", endpoint(members_post), methods=["POST"]),
        Route(T + "/members/{member}", endpoint(members_delete), methods=["DELETE"]),
        Route(T + "/apps", endpoint(team_apps_list), methods=["GET"]),
        Route(T + "/features", endpoint(team_features), methods=["GET"]),
        Route(T + "/invitations", endpoint(team_invitations), methods=["GET"]),
        Route(T + "/available-generations", endpoint(available_generations), methods=["GET"]),
    ]
