"""An app's collaborators and their permissions; a team app's members joining and leaving,
and its lock (`heroku access`, `access:*`, `apps:join`, `apps:leave`, `apps:lock`)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Collaborator, User

from .app_access import (
    ALL_PERMISSIONS,
    JOINED_PERMISSIONS,
    Permission,
    access_of,
    locked,
    parse_permissions,
)
from .apps import Apps, is_uuid
from .errors import Conflict, Forbidden, InvalidParams, NotFound
from .events import ApiActivity, EventBus
from .teams import member_role
from .views import AppView, CollaboratorView, Ref, UserView


@dataclass(frozen=True)
class TeamAppView:
    """A team app as `/teams/apps/{app}` shows it to one user."""

    app: AppView
    joined: bool
    locked: bool


class Collaborators:
    def __init__(self, store: Store, events: EventBus, apps: Apps) -> None:
        self.store = store
        self.events = events
        self.apps = apps

    # -- listing ---------------------------------------------------------------------
    def list(self, actor: UserView, identity: str) -> builtins.list[CollaboratorView]:
        """The owner first, then every collaborator."""
        return self.of(self.apps.get(actor, identity))

    def of(self, app: AppView) -> builtins.list[CollaboratorView]:
        """`list` for an app already looked up with the access rule (`Apps.get`)."""
        ref = app.ref
        owner = CollaboratorView(
            app.id,
            ref,
            app.owner_id,
            app.owner_email,
            "owner",
            ALL_PERMISSIONS,
            app.created_at,
            app.updated_at,
        )
        with self.store.session() as s:
            rows = s.execute(
                select(Collaborator, User.email)
                .join(User, User.id == Collaborator.user_id)
                .where(Collaborator.app_id == app.id)
                .order_by(Collaborator.created_at)
            )
            return [owner] + [self._view(s, c, email, ref, app) for c, email in rows]

    @staticmethod
    def _view(s: Session, c: Collaborator, email: str, ref: Ref, app: AppView) -> CollaboratorView:
        # On a team app a collaborator who is a member shows the team role, as on Heroku.
        role = member_role(s, app.team.id, c.user_id) if app.team else None
        perms = set(c.permissions or ALL_PERMISSIONS) | {"view"}
        return CollaboratorView(
            c.id,
            ref,
            c.user_id,
            email,
            role or "collaborator",
            tuple(sorted(perms)),
            c.created_at,
            c.updated_at,
        )

    def find(self, actor: UserView, identity: str, who: str) -> CollaboratorView:
        ident = who.lower()
        for c in self.list(actor, identity):
            if ident in (c.email, c.user_id, c.id):
                return c
        raise NotFound(f"Couldn't find that collaborator ({who}).")

    # -- changes ---------------------------------------------------------------------
    def add(
        self,
        actor: UserView,
        identity: str,
        user_identity: str,
        permissions: object = None,
    ) -> CollaboratorView:
        """Add a collaborator (`manage`, or the owner of a personal app); a team member
        naming themselves joins the app instead (`heroku apps:join`), unless it is locked."""
        app = self.apps.get_internal(identity)
        with self.store.session() as s:
            user = self._user(s, user_identity)
            team = app.team
            team_role = member_role(s, team.id, actor.id) if team is not None else None
            joining = user.id == actor.id and team is not None and team_role is not None
            if joining and team is not None:
                if locked(s, app) and team_role != "admin":
                    raise Forbidden(
                        f"The app {app.name} is locked: ask an admin of the team "
                        f"{team.name} to add you."
                    )
                perms = JOINED_PERMISSIONS
            else:
                self.apps.check_access(s, app, actor, owner_only=True)
                if permissions is not None:
                    perms = parse_permissions(permissions)
                else:
                    perms = JOINED_PERMISSIONS if app.team else ALL_PERMISSIONS
            if user.id == app.owner_id:
                raise InvalidParams(f"{user.email} is the owner of {app.name}.")
            if s.scalar(
                select(Collaborator.id).where(
                    Collaborator.app_id == app.id, Collaborator.user_id == user.id
                )
            ):
                raise Conflict(f"{user.email} is already a collaborator on {app.name}.")
            collab = Collaborator(app_id=app.id, user_id=user.id, permissions=list(perms))
            s.add(collab)
            s.flush()
            view = self._view(s, collab, user.email, app.ref, app)
        message = (
            f"{view.email} joined the app"
            if joining
            else f"Add {view.email} as collaborator by user {actor.email}"
        )
        self.events.publish(ApiActivity(app.id, message))
        return view

    @staticmethod
    def _user(s: Session, user_identity: str) -> User:
        user = s.get(User, user_identity) if is_uuid(user_identity) else None
        if user is None:
            user = s.scalar(select(User).where(User.email == user_identity.strip().lower()))
        if user is None:
            raise NotFound(f"Couldn't find that user ({user_identity}).")
        return user

    def update(
        self, actor: UserView, identity: str, who: str, permissions: object
    ) -> CollaboratorView:
        """A team app collaborator's new permissions (`heroku access:update`): `manage`."""
        app = self.apps.get(actor, identity, need=Permission.MANAGE)
        if app.team is None:
            raise InvalidParams(
                f"Cannot update permissions: the app {app.name} is not owned by a team."
            )
        perms = parse_permissions(permissions)
        with self.store.session() as s:
            collab, email = self._row(s, app, who)
            collab.permissions = list(perms)
            s.flush()
            view = self._view(s, collab, email, app.ref, app)
        self.events.publish(
            ApiActivity(
                app.id, f"Update {email}'s permissions to {', '.join(perms)} by {actor.email}"
            )
        )
        return view

    @staticmethod
    def _row(s: Session, app: AppView, who: str) -> tuple[Collaborator, str]:
        q = (
            select(Collaborator, User.email)
            .join(User, User.id == Collaborator.user_id)
            .where(Collaborator.app_id == app.id)
        )
        if is_uuid(who):
            q = q.where(or_(Collaborator.id == who, User.id == who))
        else:
            q = q.where(User.email == who.strip().lower())
        row = s.execute(q).first()
        if row is None:
            raise NotFound(f"Couldn't find that collaborator ({who}).")
        return row[0], row[1]

    def remove(self, actor: UserView, identity: str, user_identity: str) -> CollaboratorView:
        """A collaborator may leave (`heroku apps:leave`); removing another needs `manage`
        (a personal app's owner)."""
        app = self.apps.get_internal(identity)
        with self.store.session() as s:
            if access_of(s, app, actor) is None and not actor.is_operator:
                raise Forbidden(f"You do not have access to the app {app.name}.")
            collab, email = self._row(s, app, user_identity)
            if collab.user_id != actor.id:
                self.apps.check_access(s, app, actor, owner_only=True)
            view = self._view(s, collab, email, app.ref, app)
            s.execute(delete(Collaborator).where(Collaborator.id == collab.id))
        self.events.publish(
            ApiActivity(app.id, f"Remove {email} as collaborator by user {actor.email}")
        )
        return view

    # -- team apps -------------------------------------------------------------------
    def team_app(self, actor: UserView, identity: str) -> TeamAppView:
        """A team app for `/teams/apps/{app}`: any member of its team sees it (a locked
        one too, so that `apps:join` can say why it refuses)."""
        app = self.apps.get_internal(identity)
        with self.store.reading() as c:
            if app.team is None:
                raise NotFound(f"The app {app.name} is not a team app.")
            access = access_of(c, app, actor)
            if access is None and member_role(c, app.team.id, actor.id) is None:
                self.apps.check_access(c, app, actor)
            return TeamAppView(app, bool(access and access.joined), locked(c, app))

    def team_apps(self, actor: UserView, team_id: str) -> builtins.list[TeamAppView]:
        """A team's apps as `/teams/{team}/apps` lists them to one of its members: the
        locked ones too (Heroku's CLI marks them), with whether the member joined each."""
        apps = self.apps.list_for(actor, team_id=team_id)
        with self.store.reading() as c:
            locked_ids = set(
                c.scalars(select(App.id).where(App.team_id == team_id, App.locked.is_(True)))
            )
            hidden = locked_ids - {a.id for a in apps}
            if hidden:
                apps = sorted(
                    apps + [self.apps.get_internal(i) for i in hidden], key=lambda a: a.name
                )
            rows = set(
                c.scalars(
                    select(Collaborator.app_id).where(
                        Collaborator.user_id == actor.id,
                        Collaborator.app_id.in_([a.id for a in apps]),
                    )
                )
            )
        return [
            TeamAppView(a, a.owner_id == actor.id or a.id in rows, a.id in locked_ids) for a in apps
        ]

    def set_locked(self, actor: UserView, identity: str, value: object) -> TeamAppView:
        """`PATCH /teams/apps/{app}` `locked` (`heroku apps:lock`/`unlock`): `manage`."""
        if not isinstance(value, bool):
            raise InvalidParams("locked must be true or false.")
        app = self.apps.get(actor, identity, need=Permission.MANAGE)
        if app.team is None:
            raise InvalidParams(f"The app {app.name} is not a team app: only those lock.")
        with self.store.session() as s:
            row = s.get(App, app.id)
            if row is not None:
                row.locked = value
        state = "Lock" if value else "Unlock"
        self.events.publish(ApiActivity(app.id, f"{state} app by user {actor.email}"))
        return self.team_app(actor, app.id)
