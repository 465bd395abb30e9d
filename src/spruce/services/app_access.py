"""Who may do what to an app: Heroku's app permissions, decided in one place.

Every app action needs one permission (`view`, `deploy`, `operate` or `manage`):
- the app's owner (its creator, for a team app), a team admin and the operator hold all;
- a collaborator holds the permissions stored on its row (`view` always among them);
- a member of the app's team who has not joined it may view it, unless it is locked;
- anyone else has no access (403).
An action that `owner_only` marks (rename, transfer, destroy, ...) is the owner's on a
personal app, and needs `manage` on a team app.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from spruce.store.models import App, Collaborator

from .errors import Forbidden, InvalidParams
from .teams import member_role
from .views import AppView, UserView


class Permission(StrEnum):
    VIEW = "view"
    DEPLOY = "deploy"
    OPERATE = "operate"
    MANAGE = "manage"


ALL_PERMISSIONS: tuple[str, ...] = tuple(sorted(p.value for p in Permission))
JOINED_PERMISSIONS: tuple[str, ...] = ("deploy", "operate", "view")
"""What `heroku apps:join` gives a team member (manage stays with admins, who grant it)."""

DESCRIPTIONS = {
    Permission.VIEW: "View the app: its activity, dynos, add-ons and who has access.",
    Permission.DEPLOY: "Deploy the app: push code, change config vars, run one-off dynos, "
    "roll back releases.",
    Permission.OPERATE: "Operate the app: scale and restart dynos, maintenance mode, Heroku Exec.",
    Permission.MANAGE: "Manage the app: access, add-ons, domains, drains, rename, destroy.",
}


@dataclass(frozen=True)
class Access:
    """What one user may do to one app."""

    role: str
    """owner, admin or member (of the app's team), collaborator."""
    permissions: frozenset[str]
    joined: bool
    """Whether the user is the owner or has a collaborator row (Heroku's `joined`)."""


def parse_permissions(value: object) -> tuple[str, ...]:
    """Permission names from an API body (names or {"name": ...}), sorted, view added."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise InvalidParams("permissions must be a list of permission names.")
    names = {"view"}
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or name.strip() not in ALL_PERMISSIONS:
            raise InvalidParams(
                f"Unknown permission {name!r}: permissions are {', '.join(ALL_PERMISSIONS)}."
            )
        names.add(name.strip())
    return tuple(sorted(names))


def _team_id(app: App | AppView) -> str | None:
    if isinstance(app, App):
        return app.team_id
    return app.team.id if app.team else None


def access_of(s: Session | Connection, app: App | AppView, user: UserView) -> Access | None:
    """The user's access to the app, or None without any."""
    if app.owner_id == user.id:
        return Access("owner", frozenset(ALL_PERMISSIONS), True)
    team_id = _team_id(app)
    team_role = member_role(s, team_id, user.id) if team_id is not None else None
    if team_role == "admin":
        return Access("admin", frozenset(ALL_PERMISSIONS), _has_row(s, app.id, user.id))
    stored = s.scalar(
        select(Collaborator.permissions).where(
            Collaborator.app_id == app.id, Collaborator.user_id == user.id
        )
    )
    if stored is not None:
        # A personal app's collaborator rows from before permissions were kept hold none.
        perms = set(stored or ALL_PERMISSIONS) | {"view"}
        return Access(team_role or "collaborator", frozenset(perms), True)
    if team_role is not None and not locked(s, app):
        return Access(team_role, frozenset({"view"}), False)
    return None


def _has_row(s: Session | Connection, app_id: str, user_id: str) -> bool:
    return (
        s.scalar(
            select(Collaborator.id).where(
                Collaborator.app_id == app_id, Collaborator.user_id == user_id
            )
        )
        is not None
    )


def locked(s: Session | Connection, app: App | AppView) -> bool:
    if isinstance(app, App):
        return bool(app.locked)
    return bool(s.scalar(select(App.locked).where(App.id == app.id)))


def require(
    s: Session | Connection,
    app: App | AppView,
    actor: UserView,
    need: Permission | str = Permission.VIEW,
    owner_only: bool = False,
) -> Access | None:
    """The one access rule (see the module's doc); None for the operator."""
    if actor.is_operator:
        return None
    access = access_of(s, app, actor)
    if access is None:
        raise Forbidden(f"You do not have access to the app {app.name}.")
    if owner_only:
        if _team_id(app) is None and access.role != "owner":
            raise Forbidden(f"Only the owner of {app.name} can do this; you are a {access.role}.")
        need = Permission.MANAGE
    if str(need) not in access.permissions:
        raise Forbidden(
            f"You do not have the {need} permission on the app {app.name}: "
            f"yours are {', '.join(sorted(access.permissions))}."
        )
    return access


def sorted_permissions(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(names)))
