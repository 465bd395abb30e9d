"""App transfers between users (`heroku apps:transfer USER`, heroku3's create_transfer).

The owner asks; the recipient accepts (or declines) with PATCH state; accepting makes the
recipient the owner and keeps the previous owner as a collaborator, as Heroku does. Apps in
a team move with the team's own rules (`/teams/apps/{app}`), not here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, AppTransfer, Collaborator, User

from .app_access import ALL_PERMISSIONS
from .apps import Apps, is_uuid
from .errors import Forbidden, InvalidParams, NotFound
from .events import ApiActivity, AppChanged, EventBus
from .views import Ref, UserView

STATES = ("pending", "accepted", "declined")


@dataclass(frozen=True)
class AppTransferView:
    id: str
    app: Ref
    owner: Ref  # (id, email)
    recipient: Ref
    state: str
    created_at: dt.datetime
    updated_at: dt.datetime


class AppTransfers:
    def __init__(self, store: Store, events: EventBus, apps: Apps) -> None:
        self.store = store
        self.events = events
        self.apps = apps

    @staticmethod
    def _view(s: Session, t: AppTransfer) -> AppTransferView:
        app = s.get(App, t.app_id)
        owner, recipient = s.get(User, t.owner_id), s.get(User, t.recipient_id)
        return AppTransferView(
            t.id,
            Ref(t.app_id, app.name if app else ""),
            Ref(t.owner_id, owner.email if owner else ""),
            Ref(t.recipient_id, recipient.email if recipient else ""),
            t.state,
            t.created_at,
            t.updated_at,
        )

    def list(self, actor: UserView) -> list[AppTransferView]:
        with self.store.session() as s:
            rows = s.scalars(
                select(AppTransfer)
                .where(or_(AppTransfer.owner_id == actor.id, AppTransfer.recipient_id == actor.id))
                .order_by(AppTransfer.created_at)
            ).all()
            return [self._view(s, t) for t in rows]

    def _row(self, s: Session, actor: UserView, identity: str) -> AppTransfer:
        t = s.get(AppTransfer, identity) if is_uuid(identity) else None
        if t is None:
            app = s.scalar(select(App).where(App.name == identity))
            if app is not None:
                t = s.scalar(
                    select(AppTransfer).where(
                        AppTransfer.app_id == app.id, AppTransfer.state == "pending"
                    )
                )
        if t is None or actor.id not in (t.owner_id, t.recipient_id):
            raise NotFound(f"Couldn't find that app transfer ({identity}).")
        return t

    def get(self, actor: UserView, identity: str) -> AppTransferView:
        with self.store.session() as s:
            return self._view(s, self._row(s, actor, identity))

    def create(self, actor: UserView, app_identity: object, recipient: object) -> AppTransferView:
        if not isinstance(app_identity, str) or not app_identity:
            raise InvalidParams("app (a name or id) is required.")
        if not isinstance(recipient, str) or not recipient:
            raise InvalidParams("recipient (an email or id) is required.")
        app = self.apps.get(actor, app_identity, owner_only=True)
        if app.team is not None:
            raise InvalidParams(f"{app.name} belongs to a team: transfer it with the team.")
        with self.store.session() as s:
            user = s.get(User, recipient) if is_uuid(recipient) else None
            user = user or s.scalar(select(User).where(User.email == recipient.strip().lower()))
            if user is None:
                raise NotFound(f"Couldn't find that user ({recipient}).")
            if user.id == app.owner_id:
                raise InvalidParams(f"{user.email} already owns {app.name}.")
            for old in s.scalars(
                select(AppTransfer).where(
                    AppTransfer.app_id == app.id, AppTransfer.state == "pending"
                )
            ):
                s.delete(old)  # one pending transfer per app: the newest request wins
            t = AppTransfer(app_id=app.id, owner_id=app.owner_id, recipient_id=user.id)
            s.add(t)
            s.flush()
            view = self._view(s, t)
        self.events.publish(
            ApiActivity(app.id, f"Transfer to {view.recipient.name} requested by {actor.email}")
        )
        return view

    def update(self, actor: UserView, identity: str, state: object) -> AppTransferView:
        if state not in ("accepted", "declined"):
            raise InvalidParams("state must be accepted or declined.")
        with self.store.session() as s:
            t = self._row(s, actor, identity)
            if t.recipient_id != actor.id:
                raise Forbidden("Only the recipient can accept or decline an app transfer.")
            if t.state != "pending":
                raise InvalidParams(f"This app transfer was already {t.state}.")
            t.state = str(state)
            app = s.get(App, t.app_id)
            if state == "accepted" and app is not None:
                previous = app.owner_id
                app.owner_id = t.recipient_id
                mine = s.scalar(
                    select(Collaborator).where(
                        Collaborator.app_id == app.id, Collaborator.user_id == t.recipient_id
                    )
                )
                if mine is not None:
                    s.delete(mine)
                s.add(
                    Collaborator(
                        app_id=app.id,
                        user_id=previous,
                        permissions=list(ALL_PERMISSIONS),
                    )
                )
            s.flush()
            view = self._view(s, t)
        if state == "accepted":
            self.events.publish(AppChanged(view.app.id))
            self.events.publish(
                ApiActivity(view.app.id, f"Transferred to {actor.email} from {view.owner.name}")
            )
        return view

    def delete(self, actor: UserView, identity: str) -> AppTransferView:
        with self.store.session() as s:
            t = self._row(s, actor, identity)
            if t.owner_id != actor.id:
                raise Forbidden("Only the app's owner can cancel its transfer.")
            view = self._view(s, t)
            s.delete(t)
            return view
