"""Apps, their owners and collaborators, and who may touch which app."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Select, bindparam, select, union
from sqlalchemy.orm import Session, object_session

from spruce.store.db import Store
from spruce.store.models import (
    App,
    Collaborator,
    Release,
    Space,
    Team,
    User,
    new_id,
    utcnow,
)

from .app_access import Permission, require
from .catalog import CNB_STACK, DEFAULT_STACK, REGIONS, STACKS
from .errors import InvalidParams, NotFound, flag
from .events import ApiActivity, AppChanged, AppCreated, AppDeleted, AppDeleting, EventBus
from .features import account_defaults
from .model import Generation
from .oci_images import image_summary
from .settings import AppSettings, PlatformAddresses
from .spaces import Placement
from .teams import team_ids_of
from .views import AppView, ListRange, Ref, UserView

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

Visible = Select[Any] | CompoundSelect[Any]
"""A subquery of app ids (`Apps.visible_ids`)."""


def generated_name() -> str:
    return (
        f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(90000) + 10000}"
    )


def is_uuid(value: str) -> bool:
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


def find_region(name: str | None) -> dict[str, object]:
    name = name or "us"
    for r in REGIONS:
        if name in (r["name"], r["id"]):
            return r
    raise InvalidParams(f"Couldn't find that region ({name}). Valid regions: us, eu.")


def find_stack(name: str | None) -> dict[str, object]:
    # "cedar" names the generation (heroku3's create_app() sends it by default): its
    # current default stack, as Heroku answers for it.
    name = DEFAULT_STACK if name in (None, "", "cedar") else name
    for st in STACKS:
        if name in (st["name"], st["id"]):
            return st
    names = ", ".join(str(s["name"]) for s in STACKS)
    raise InvalidParams(f"Stack {name} is not available. Available stacks: {names}.")


def user_view(u: User) -> UserView:
    return UserView(u.id, u.email, u.name, u.is_operator, u.created_at, u.updated_at, u.last_login)


class Apps:
    def __init__(self, store: Store, events: EventBus, addresses: PlatformAddresses) -> None:
        self.store = store
        self.events = events
        self.addresses = addresses

    # -- views ---------------------------------------------------------------------------
    def view(self, app: App, owner_email: str, new: bool = False) -> AppView:
        """`new`: an app created just now, which has no image yet."""
        session = object_session(app)
        image = (
            image_summary(session, app.id)
            if app.generation == Generation.FIR and session is not None and not new
            else None
        )
        return AppView(
            id=app.id,
            name=app.name,
            owner_id=app.owner_id,
            owner_email=owner_email,
            region=app.region,
            stack=app.stack,
            build_stack=app.build_stack,
            generation=app.generation,
            maintenance=app.maintenance,
            acm=app.acm,
            released_at=app.released_at,
            buildpack_provided_description=app.buildpack_provided_description,
            slug_size=app.slug_size,
            repo_size=app.repo_size,
            settings=AppSettings.from_stored(app.settings),
            created_at=app.created_at,
            updated_at=app.updated_at,
            web_url=self.addresses.web_url(app.name),
            git_url=self.addresses.git_remote(app.name),
            default_hostname=self.addresses.default_hostname(app.name),
            image=image,
            team=self._ref(session, Team, app.team_id),
            space=self._ref(session, Space, app.space_id),
        )

    @staticmethod
    def _ref(
        session: Session | None, model: type[Team] | type[Space], id_: str | None
    ) -> Ref | None:
        if id_ is None or session is None:
            return None
        row = session.get(model, id_)
        return Ref(row.id, row.name) if isinstance(row, Team | Space) else None

    # Listings read columns, not ORM objects: a thousand apps in one query and no identity
    # map to fill (issue 23: GET /apps of 1,000 apps in tens of milliseconds).
    _LISTED = (
        App.id,
        App.name,
        App.owner_id,
        User.email,
        App.region,
        App.stack,
        App.build_stack,
        App.generation,
        App.maintenance,
        App.acm,
        App.released_at,
        App.buildpack_provided_description,
        App.slug_size,
        App.repo_size,
        App.settings,
        App.created_at,
        App.updated_at,
        App.team_id,
        Team.name,
        App.space_id,
        Space.name,
    )

    @classmethod
    def _with_owner(cls) -> Select[Any]:
        return (
            select(*cls._LISTED)
            .join(User, User.id == App.owner_id)
            .outerjoin(Team, Team.id == App.team_id)
            .outerjoin(Space, Space.id == App.space_id)
        )

    def _views(
        self, s: Session | Connection, q: Select[Any], params: dict[str, Any] | None = None
    ) -> list[AppView]:
        """Views of the rows of `q` (a `_with_owner` select), in its order."""
        a = self.addresses
        return [
            AppView(
                id=row[0],
                name=row[1],
                owner_id=row[2],
                owner_email=row[3],
                region=row[4],
                stack=row[5],
                build_stack=row[6],
                generation=row[7],
                maintenance=row[8],
                acm=row[9],
                released_at=row[10],
                buildpack_provided_description=row[11],
                slug_size=row[12],
                repo_size=row[13],
                settings=AppSettings.from_stored(row[14]),
                created_at=row[15],
                updated_at=row[16],
                web_url=a.web_url(row[1]),
                git_url=a.git_remote(row[1]),
                default_hostname=a.default_hostname(row[1]),
                team=Ref(row[17], row[18]) if row[17] else None,
                space=Ref(row[19], row[20]) if row[19] else None,
            )
            for row in s.execute(q, params or {})
        ]

    # -- lookup and access -----------------------------------------------------------------
    @staticmethod
    def find_row(s: Session, identity: str) -> App:
        app = s.get(App, identity) if is_uuid(identity) else None
        if app is None:
            app = s.scalar(select(App).where(App.name == identity))
        if app is None:
            raise NotFound("Couldn't find that app.")
        return app

    @staticmethod
    def check_access(
        s: Session | Connection,
        app: App | AppView,
        actor: UserView,
        owner_only: bool = False,
        need: Permission | str = Permission.VIEW,
    ) -> None:
        """The one access rule (services/app_access.py): 403 without access, or without the
        permission `need`; `owner_only` actions are the owner's (a team app's: `manage`)."""
        require(s, app, actor, need, owner_only)

    def _one(self, s: Connection, identity: str) -> AppView:
        """One app's view in one statement (its owner, team and space joined in), built
        once; a Fir app's image summary is one more."""
        # A name is at most 30 characters: a UUID is always an id.
        views = self._views(s, _one_statement(is_uuid(identity)), {"identity": identity})
        if not views:
            raise NotFound("Couldn't find that app.")
        view = views[0]
        if view.generation == Generation.FIR:
            with self.store.session() as orm:
                view = replace(view, image=image_summary(orm, view.id))
        return view

    def get(
        self,
        actor: UserView,
        identity: str,
        owner_only: bool = False,
        need: Permission | str = Permission.VIEW,
    ) -> AppView:
        """The app if `actor` may do `need` to it: 404 when it does not exist, 403 without
        access or without that permission."""
        with self.store.reading() as c:
            view = self._one(c, identity)
            self.check_access(c, view, actor, owner_only, need)
            return view

    def get_internal(self, identity: str) -> AppView:
        """For the platform's own reactions (no actor): no access check."""
        with self.store.reading() as c:
            return self._one(c, identity)

    def visible_ids(self, s: Session | Connection, actor: UserView) -> Visible:
        """The ids of the apps `actor` may see, as a subquery: a union of three indexed
        look-ups (owned, collaborating, the teams'), not a scan of every app."""
        if actor.is_operator:
            return select(App.id)
        return union(
            select(App.id).where(App.owner_id == actor.id),
            select(Collaborator.app_id).where(Collaborator.user_id == actor.id),
            # A locked team app is its joined members' and the team admins' only.
            select(App.id).where(App.team_id.in_(team_ids_of(actor.id)), App.locked.is_(False)),
            select(App.id).where(App.team_id.in_(team_ids_of(actor.id, "admin"))),
        )

    def list_for(
        self,
        actor: UserView,
        owned_only: bool = False,
        team_id: str | None = None,
        space_id: str | None = None,
        personal: bool = False,
    ) -> list[AppView]:
        """The apps `actor` may see (`owned_only`: the ones they own), of one team or one
        space if given; `personal`: none of a team's."""
        with self.store.reading() as s:
            q = self._with_owner()
            if team_id is not None:
                q = q.where(App.team_id == team_id)
            if space_id is not None:
                q = q.where(App.space_id == space_id)
            if personal:
                q = q.where(App.team_id.is_(None))
            if owned_only:
                q = q.where(App.owner_id == actor.id)
            elif not actor.is_operator:
                q = q.where(App.id.in_(self.visible_ids(s, actor)))
            return self._views(s, q.order_by(App.name))

    _ORDERABLE = {"id": App.id, "name": App.name, "updated_at": App.updated_at}

    def page_for(self, actor: UserView, rng: ListRange) -> tuple[list[AppView], bool]:
        """One page of the apps `actor` may see, and whether more follow. Ordered, cut and
        limited in the database: a page costs the same with 100 apps or 100,000."""
        if rng.field not in self._ORDERABLE:
            raise InvalidParams(f"Apps cannot be ordered by {rng.field}.")
        column: Any = self._ORDERABLE[rng.field]
        with self.store.reading() as s:
            q = self._with_owner()
            if not actor.is_operator:
                q = q.where(App.id.in_(self.visible_ids(s, actor)))
            key = column
            if rng.field != "updated_at" and self.store.engine.dialect.name == "postgresql":
                key = column.collate("C")  # bytewise, as SQLite and the Range's Next-Range
            if rng.start is not None:
                start: Any = rng.start
                if rng.field == "updated_at":
                    start = _range_time(rng.start)
                exclusive = rng.exclusive
                if rng.descending:
                    q = q.where(key < start if exclusive else key <= start)
                else:
                    q = q.where(key > start if exclusive else key >= start)
            order = [key.desc(), App.id.desc()] if rng.descending else [key.asc(), App.id]
            views = self._views(s, q.order_by(*order).limit(rng.limit + 1))
        return views[: rng.limit], len(views) > rng.limit

    def all(self) -> list[AppView]:
        with self.store.reading() as s:
            return self._views(s, self._with_owner().order_by(App.name))

    def ids(self) -> list[str]:
        with self.store.session() as s:
            return list(s.scalars(select(App.id)))

    # -- changes ---------------------------------------------------------------------------
    def create(
        self,
        actor: UserView,
        name: str | None = None,
        region: str | None = None,
        stack: str | None = None,
        generation: str | None = None,
        placement: Placement | None = None,
    ) -> AppView:
        """A new app; `placement` (services/spaces.py) puts it in a team or a space, whose
        region and generation it then takes."""
        placement = placement or Placement(None, None, None, generation)
        generation = placement.generation
        if placement.region is not None:
            if region not in (None, "", placement.region):
                raise InvalidParams("An app in a space runs in the space's region.")
            region_name = placement.region
        else:
            region_name = str(find_region(region)["name"])
        if generation not in (None, *Generation):
            raise InvalidParams("generation must be cedar or fir.")
        if generation == Generation.FIR:
            # Fir builds with Cloud Native Buildpacks: there is no stack to choose.
            if stack not in (None, "", CNB_STACK["name"]):
                raise InvalidParams("Fir apps have no stack setting: they build with CNBs.")
            stack_d = CNB_STACK
        else:
            stack_d = find_stack(stack)
        with self.store.session() as s:
            if name:
                validate_name(name)
                if s.scalar(select(App.id).where(App.name == name)):
                    raise InvalidParams(f"Name {name} is already taken")
            else:
                name = generated_name()
                while s.scalar(select(App.id).where(App.name == name)):
                    name = generated_name()
            # The id is made here so that the app and its first release go in one flush.
            app = App(
                id=new_id(),
                name=name,
                owner_id=actor.id,
                region=region_name,
                stack=str(stack_d["name"]),
                build_stack=str(stack_d["name"]),
                generation=generation or Generation.CEDAR,
                settings={},
                team_id=placement.team_id,
                space_id=placement.space_id,
                released_at=utcnow(),
            )
            s.add(app)
            s.add(
                Release(
                    app_id=app.id,
                    version=1,
                    description="Initial release",
                    user_id=actor.id,
                    config={},
                )
            )
            account_defaults(s, app.id, actor.id)
            s.flush()
            view = self.view(app, actor.email, new=True)
        self.events.publish(AppCreated(view.id))
        self.events.publish(ApiActivity(view.id, f"Initial release by user {actor.email}"))
        return view

    def update(
        self,
        actor: UserView,
        identity: str,
        name: str | None = None,
        maintenance: object = None,
        build_stack: str | None = None,
    ) -> AppView:
        renamed, old_name = False, ""
        with self.store.session() as s:
            app = self.find_row(s, identity)
            # Renaming is the owner's (manage); maintenance mode is operate; the stack deploy.
            need = Permission.OPERATE if maintenance is not None else Permission.DEPLOY
            if maintenance is None and build_stack is None:
                need = Permission.VIEW
            self.check_access(s, app, actor, owner_only=name is not None, need=need)
            if name is not None and name != app.name:
                validate_name(name)
                if s.scalar(select(App.id).where(App.name == name)):
                    raise InvalidParams(f"Name {name} is already taken")
                old_name, app.name = app.name, name
                renamed = True
            if maintenance is not None:
                maintenance = flag(maintenance, "maintenance")
                app.maintenance = maintenance
            if build_stack is not None:
                if app.generation == Generation.FIR:
                    raise InvalidParams("Fir apps have no stack setting: they build with CNBs.")
                app.build_stack = str(find_stack(build_stack)["name"])
            s.flush()
            owner = s.get(User, app.owner_id)
            view = self.view(app, owner.email if owner else "")
        self.events.publish(
            AppChanged(view.id, renamed=renamed, old_name=old_name, new_name=view.name)
        )
        if isinstance(maintenance, bool):
            state = "on" if maintenance else "off"
            self.events.publish(
                ApiActivity(view.id, f"Maintenance mode {state} by user {actor.email}")
            )
        return view

    def update_settings(self, actor: UserView, identity: str, changes: object) -> AppSettings:
        """Spruce's per-app settings (Heroku keeps these internal): owner or operator only."""
        with self.store.session() as s:
            app = self.find_row(s, identity)
            self.check_access(s, app, actor, owner_only=True)
            settings = AppSettings.from_stored(app.settings).changed(changes)
            app.settings = settings.as_dict()
            app_id = app.id
        self.events.publish(AppChanged(app_id))
        return settings

    def announce_deleting(self, app: AppView) -> None:
        """Dynos, builds and release phases of the app stop before its rows go."""
        self.events.publish(AppDeleting(app.id))

    def delete_row(self, app: AppView) -> None:
        with self.store.session() as s:
            row = s.get(App, app.id)
            if row is not None:
                s.delete(row)
        self.events.publish(AppDeleted(app.id, app_name=app.name))

    def names(self, ids: Sequence[str]) -> dict[str, str]:
        """App names by id (one query for a whole listing)."""
        if not ids:
            return {}
        with self.store.session() as s:
            return dict(s.execute(select(App.id, App.name).where(App.id.in_(set(ids)))).all())


@functools.cache
def _one_statement(by_id: bool) -> Select[Any]:
    """`Apps._one`'s select, built once (building it costs more than running it)."""
    column = App.id if by_id else App.name
    return Apps._with_owner().where(column == bindparam("identity"))


def _range_time(value: str) -> dt.datetime:
    """A Range bound on a timestamp as the API shows it (UTC, whole seconds, as stored)."""
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise InvalidParams(f"Invalid Range start {value!r}: expected a timestamp.") from None
