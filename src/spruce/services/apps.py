"""Apps, their owners and collaborators, and who may touch which app."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import delete, or_, select

from spruce.store.db import Store
from spruce.store.models import App, Collaborator, Release, User, utcnow

from .catalog import DEFAULT_STACK, REGIONS, STACKS
from .errors import Conflict, Forbidden, InvalidParams, NotFound
from .events import EventBus

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
NAME_RULE = (
    "Name must start with a letter, end with a letter or digit and can only contain "
    "lowercase letters, digits, and dashes."
)
NAME_LENGTH = "Name must be between 3 and 30 characters long."
_ADJECTIVES = (
    "afternoon agile ancient autumn billowing bitter black blue bold broken calm cold cool "
    "crimson damp dark dawn desolate dry dusty empty evening fading falling floral fragrant "
    "frosty gentle glacial green hidden holy icy late lingering little lively long misty "
    "morning muddy nameless noble old patient polished proud quiet rapid red restless rough "
    "secret shy silent small snowy solitary sparkling spring still summer sweet thawing "
    "twilight wandering weathered white wild winter wispy withered young"
).split()
_NOUNS = (
    "bird breeze brook bush butterfly cherry cloud darkness dawn dew dream dust feather field "
    "fire firefly flower fog forest frog frost glade glitter grass haze hill lake leaf meadow "
    "moon morning mountain night paper pine pond rain resonance river sea shadow shape silence "
    "sky smoke snow snowflake sound star sun sunset surf thunder tree violet voice water "
    "waterfall wave wildflower wind wood"
).split()

COLLABORATOR_PERMISSIONS = ["deploy", "manage", "operate", "view"]


def generated_name() -> str:
    return (
        f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(90000) + 10000}"
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def validate_name(name: str) -> str:
    if not 3 <= len(name) <= 30:
        raise InvalidParams(NAME_LENGTH)
    if not NAME_RE.match(name):
        raise InvalidParams(NAME_RULE)
    return name


def find_region(name: str | None) -> dict:
    name = name or "us"
    for r in REGIONS:
        if name in (r["name"], r["id"]):
            return r
    raise InvalidParams(f"Couldn't find that region ({name}). Valid regions: us, eu.")


def find_stack(name: str | None) -> dict:
    name = name or DEFAULT_STACK
    for st in STACKS:
        if name in (st["name"], st["id"]):
            return st
    names = ", ".join(s["name"] for s in STACKS)
    raise InvalidParams(f"Stack {name} is not available. Available stacks: {names}.")


class Apps:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    # -- lookup and access -------------------------------------------------
    def _find(self, s, identity: str) -> App:  # type: ignore[no-untyped-def]
        app = s.get(App, identity) if _is_uuid(identity) else None
        if app is None:
            app = s.scalar(select(App).where(App.name == identity))
        if app is None:
            raise NotFound("Couldn't find that app.")
        return app

    def role(self, s, app: App, user: User) -> str | None:  # type: ignore[no-untyped-def]
        if app.owner_id == user.id:
            return "owner"
        collab = s.scalar(
            select(Collaborator).where(
                Collaborator.app_id == app.id, Collaborator.user_id == user.id
            )
        )
        return "collaborator" if collab else None

    def get(self, actor: User, identity: str, owner_only: bool = False) -> App:
        """The app if `actor` may see it: 404 when it does not exist, 403 without access."""
        with self.store.session() as s:
            app = self._find(s, identity)
            role = self.role(s, app, actor)
            if role is None and not actor.is_operator:
                raise Forbidden(f"You do not have access to the app {app.name}.")
            if owner_only and role != "owner" and not actor.is_operator:
                raise Forbidden(
                    f"Only the owner of {app.name} can do this; you are a collaborator."
                )
            return app

    def get_internal(self, identity: str) -> App:
        with self.store.session() as s:
            return self._find(s, identity)

    def list_for(self, actor: User, owned_only: bool = False) -> list[App]:
        with self.store.session() as s:
            q = select(App)
            if owned_only:
                q = q.where(App.owner_id == actor.id)
            elif not actor.is_operator:
                collab_ids = select(Collaborator.app_id).where(Collaborator.user_id == actor.id)
                q = q.where(or_(App.owner_id == actor.id, App.id.in_(collab_ids)))
            return list(s.scalars(q.order_by(App.name)))

    def all(self) -> list[App]:
        with self.store.session() as s:
            return list(s.scalars(select(App).order_by(App.name)))

    def owner(self, app: App) -> User:
        with self.store.session() as s:
            user = s.get(User, app.owner_id)
            assert user is not None
            return user

    # -- changes ---------------------------------------------------------
    def create(
        self,
        actor: User,
        name: str | None = None,
        region: str | None = None,
        stack: str | None = None,
        generation: str | None = None,
    ) -> App:
        region_d = find_region(region)
        stack_d = find_stack(stack)
        if generation not in (None, "cedar", "fir"):
            raise InvalidParams("generation must be cedar or fir.")
        with self.store.session() as s:
            if name:
                validate_name(name)
                if s.scalar(select(App.id).where(App.name == name)):
                    raise InvalidParams(f"Name {name} is already taken")
            else:
                name = generated_name()
                while s.scalar(select(App.id).where(App.name == name)):
                    name = generated_name()
            app = App(
                name=name,
                owner_id=actor.id,
                region=region_d["name"],
                stack=stack_d["name"],
                build_stack=stack_d["name"],
                generation=generation or "cedar",
            )
            s.add(app)
            s.flush()
            s.add(
                Release(
                    app_id=app.id,
                    version=1,
                    description="Initial release",
                    user_id=actor.id,
                    config={},
                )
            )
            app.released_at = utcnow()
        self.events.publish("app_created", app_id=app.id)
        self.events.publish(
            "api_log", app_id=app.id, message=f"Initial release by user {actor.email}"
        )
        return app

    def update(
        self,
        actor: User,
        identity: str,
        name: str | None = None,
        maintenance: bool | None = None,
        build_stack: str | None = None,
    ) -> App:
        app = self.get(actor, identity, owner_only=name is not None)
        renamed = False
        with self.store.session() as s:
            app = self._find(s, app.id)
            if name is not None and name != app.name:
                renamed = True
                validate_name(name)
                if s.scalar(select(App.id).where(App.name == name)):
                    raise InvalidParams(f"Name {name} is already taken")
                app.name = name
            if maintenance is not None:
                if not isinstance(maintenance, bool):
                    raise InvalidParams("maintenance must be true or false.")
                app.maintenance = maintenance
            if build_stack is not None:
                app.build_stack = find_stack(build_stack)["name"]
        self.events.publish("app_changed", app_id=app.id, renamed=renamed)
        if maintenance is not None:
            state = "on" if maintenance else "off"
            self.events.publish(
                "api_log", app_id=app.id, message=f"Maintenance mode {state} by user {actor.email}"
            )
        return app

    def delete(self, actor: User, identity: str) -> App:
        app = self.get(actor, identity, owner_only=True)
        # Tell the runtime first so dynos stop and add-ons are released before rows vanish.
        self.events.publish("app_deleting", app_id=app.id)
        with self.store.session() as s:
            row = s.get(App, app.id)
            if row is not None:
                s.delete(row)
        self.events.publish("app_deleted", app_id=app.id, app_name=app.name)
        return app

    SETTINGS = {
        # name: (min, max, description)
        "boot_timeout": (1, 3600, "seconds a web dyno has to bind $PORT (R10)"),
        "formation_limit": (0, 1000, "most dynos per process type"),
    }

    def update_settings(self, actor: User, identity: str, changes: object) -> dict[str, object]:
        """Spruce's per-app settings (Heroku keeps these internal): owner or operator only."""
        app = self.get(actor, identity, owner_only=True)
        if not isinstance(changes, dict):
            raise InvalidParams("settings must be an object.")
        for key, value in changes.items():
            if key not in self.SETTINGS:
                raise InvalidParams(
                    f"Unknown setting {key!r}. Settings: {', '.join(sorted(self.SETTINGS))}."
                )
            low, high, what = self.SETTINGS[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low <= value <= high
            ):
                raise InvalidParams(f"{key} ({what}) must be a number from {low} to {high}.")
        with self.store.session() as s:
            row = s.get(App, app.id)
            assert row is not None
            row.settings = {**(row.settings or {}), **changes}
            result = dict(row.settings)
        self.events.publish("app_changed", app_id=app.id)
        return result

    def set_setting(self, app_id: str, key: str, value: object) -> None:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            settings = dict(app.settings or {})
            settings[key] = value
            app.settings = settings

    # -- collaborators -----------------------------------------------------
    def collaborators(
        self, actor: User, identity: str
    ) -> tuple[App, list[tuple[Collaborator | None, User]]]:
        """The owner (as a row with no Collaborator) and every collaborator."""
        app = self.get(actor, identity)
        with self.store.session() as s:
            owner = s.get(User, app.owner_id)
            rows: list[tuple[Collaborator | None, User]] = [(None, owner)]  # type: ignore[list-item]
            for c, u in s.execute(
                select(Collaborator, User)
                .join(User, User.id == Collaborator.user_id)
                .where(Collaborator.app_id == app.id)
                .order_by(Collaborator.created_at)
            ):
                rows.append((c, u))
            return app, rows

    def add_collaborator(
        self, actor: User, identity: str, user_identity: str, silent: bool = False
    ) -> tuple[Collaborator, User]:
        app = self.get(actor, identity, owner_only=True)
        with self.store.session() as s:
            user = s.get(User, user_identity) if _is_uuid(user_identity) else None
            if user is None:
                user = s.scalar(select(User).where(User.email == user_identity.strip().lower()))
            if user is None:
                raise NotFound(f"Couldn't find that user ({user_identity}).")
            if user.id == app.owner_id:
                raise InvalidParams(f"{user.email} is the owner of {app.name}.")
            if s.scalar(
                select(Collaborator).where(
                    Collaborator.app_id == app.id, Collaborator.user_id == user.id
                )
            ):
                raise Conflict(f"{user.email} is already a collaborator on {app.name}.")
            collab = Collaborator(
                app_id=app.id, user_id=user.id, permissions=list(COLLABORATOR_PERMISSIONS)
            )
            s.add(collab)
        self.events.publish(
            "api_log",
            app_id=app.id,
            message=f"Add {user.email} as collaborator by user {actor.email}",
        )
        return collab, user

    def remove_collaborator(
        self, actor: User, identity: str, user_identity: str
    ) -> tuple[Collaborator, User]:
        app = self.get(actor, identity)
        with self.store.session() as s:
            q = (
                select(Collaborator, User)
                .join(User, User.id == Collaborator.user_id)
                .where(Collaborator.app_id == app.id)
            )
            if _is_uuid(user_identity):
                q = q.where(or_(Collaborator.id == user_identity, User.id == user_identity))
            else:
                q = q.where(User.email == user_identity.strip().lower())
            row = s.execute(q).first()
            if row is None:
                raise NotFound(f"Couldn't find that collaborator ({user_identity}).")
            collab, user = row
            # A collaborator may remove themselves; anyone else needs the owner.
            if actor.id != app.owner_id and actor.id != user.id and not actor.is_operator:
                raise Forbidden(f"Only the owner of {app.name} can remove collaborators.")
            s.execute(delete(Collaborator).where(Collaborator.id == collab.id))
        self.events.publish(
            "api_log",
            app_id=app.id,
            message=f"Remove {user.email} as collaborator by user {actor.email}",
        )
        return collab, user
