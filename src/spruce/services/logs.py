"""Log sessions and log drains: the rules in front of the log router (the LogPort)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, LogDrain, Space, Team, utcnow

from .errors import InvalidParams, NotFound
from .events import ApiActivity, AppCreated, AppDeleted, EventBus
from .model import DrainSpec, new_drain_token
from .ports import LoggedLine, LogPort
from .settings import PlatformAddresses
from .teams import Teams
from .views import LogDrainView, LogSessionView, Ref, UserView

MAX_DRAINS_PER_APP = 5  # Heroku's limit on log drains per app
_SPACE_DRAIN = uuid.UUID("5b0c6d1e-8a43-4f4e-9a4e-2f1d7c3b9e10")


@dataclass(frozen=True)
class SpaceDrainView:
    """A space's log drain: every app of the space sends its logs there."""

    id: str
    space: Ref
    url: str
    token: str
    created_at: dt.datetime
    updated_at: dt.datetime


def space_drain_id(space_id: str, url: str) -> str:
    """A space drain's id, derived (not stored): one per space and URL."""
    return str(uuid.uuid5(_SPACE_DRAIN, f"{space_id} {url}"))


def space_drain_spec(space_id: str, url: str, app_id: str, app_name: str) -> DrainSpec:
    """What one app of the space sends to the space's drain: the space's `d.` token (every
    app's lines carry the same), a drain of its own in the log router."""
    drain_id = space_drain_id(space_id, url)
    own = str(uuid.uuid5(_SPACE_DRAIN, f"{drain_id} {app_id}"))
    return DrainSpec(id=own, url=url, token=f"d.{drain_id}", app_name=app_name)


class Logs:
    def __init__(
        self, store: Store, events: EventBus, port: LogPort, addresses: PlatformAddresses
    ) -> None:
        self.store = store
        self.events = events
        self.port = port
        self.addresses = addresses
        events.subscribe(ApiActivity, self._api_line)
        events.subscribe(AppDeleted, lambda e: port.remove_app(e.app_id))
        events.subscribe(AppCreated, self._created)
        self._syncs: set[asyncio.Task[None]] = set()

    def _created(self, event: AppCreated) -> None:
        """An app made in a space with a drain gets it: the store read off the loop, the
        log router's drains set on it (their workers are the loop's tasks)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.sync(event.app_id)
            return

        async def sync() -> None:
            specs = await self.store.in_worker(self._specs, event.app_id)
            if specs:
                self.port.set_drains(event.app_id, specs)

        task = loop.create_task(sync())
        self._syncs.add(task)
        task.add_done_callback(self._syncs.discard)

    def _api_line(self, event: ApiActivity) -> None:
        message = f"{event.message} via {event.via}" if event.via else event.message
        self.port.emit(event.app_id, "app", "api", message)

    def recent(
        self,
        app_id: str,
        lines: int = 100,
        source: str | None = None,
        dyno: str | None = None,
    ) -> list[LoggedLine]:
        """The app's last `lines` log lines, optionally of one source (app, heroku) or
        dyno (web.1, or web for every web dyno): `heroku logs` without --tail."""
        found, _ = self.port.lines_after(app_id, 0, source or None, dyno or None)
        return list(found[-lines:]) if lines > 0 else []

    def mark(self, app_id: str) -> int:
        """Where the app's log is now: read what comes after it with `since`."""
        return self.port.head(app_id)

    def since(
        self, app_id: str, mark: int, source: str | None = None, dyno: str | None = None
    ) -> tuple[list[LoggedLine], int]:
        found, head = self.port.lines_after(app_id, mark, source, dyno)
        return list(found), head

    # -- sessions -------------------------------------------------------------------------
    def create_session(
        self,
        app_id: str,
        lines: object = None,
        tail: object = False,
        source: object = None,
        dyno: object = None,
    ) -> LogSessionView:
        if lines is None:
            n = 100
        elif isinstance(lines, int) and not isinstance(lines, bool):
            n = lines
        elif isinstance(lines, str) and lines.strip().isdigit():
            n = int(lines)
        else:
            raise InvalidParams("lines must be a number.")
        if isinstance(tail, int) and tail in (0, 1):
            tail = bool(tail)  # some clients send 0/1
        if not isinstance(tail, bool):
            raise InvalidParams("tail must be true or false.")
        for name, value in (("source", source), ("dyno", dyno)):
            if value is not None and not isinstance(value, str):
                raise InvalidParams(f"{name} must be a string.")
        try:
            token = self.port.create_session(
                app_id,
                n,
                tail,
                source or None,  # type: ignore[arg-type]
                dyno or None,  # type: ignore[arg-type]
            )
        except ValueError as e:
            raise InvalidParams(str(e)) from None
        return LogSessionView(
            id=token[:36] if len(token) >= 36 else token,
            logplex_url=self.addresses.stream_url("logs", token),
            created_at=utcnow(),
        )

    # -- drains ---------------------------------------------------------------------------
    @staticmethod
    def _view(d: LogDrain, app: Ref) -> LogDrainView:
        return LogDrainView(d.id, app, d.url, d.token, d.addon_id, d.created_at, d.updated_at)

    @staticmethod
    def _app(s: Session, app_id: str) -> App:
        app = s.get(App, app_id)
        if app is None:
            raise NotFound("Couldn't find that app.")
        return app

    def drains(self, app_id: str) -> list[LogDrainView]:
        with self.store.session() as s:
            app = self._app(s, app_id)
            ref = Ref(app.id, app.name)
            rows = s.scalars(
                select(LogDrain).where(LogDrain.app_id == app_id).order_by(LogDrain.created_at)
            )
            return [self._view(d, ref) for d in rows]

    def _checked_url(self, url: object) -> str:
        """A drain URL the log router can send to, or InvalidParams saying why not."""
        if not isinstance(url, str) or not url.strip():
            raise InvalidParams("url is required.")
        try:
            self.port.check_drain_url(url.strip())
        except ValueError as e:
            raise InvalidParams(str(e)) from None
        return url.strip()

    def add_drain(self, actor: UserView, app_id: str, url: object) -> LogDrainView:
        url = self._checked_url(url)
        with self.store.session() as s:
            app = self._app(s, app_id)
            if s.scalar(select(LogDrain.id).where(LogDrain.app_id == app_id, LogDrain.url == url)):
                raise InvalidParams("This drain is already added to this app.")
            count = s.scalar(select(func.count(LogDrain.id)).where(LogDrain.app_id == app_id))
            if (count or 0) >= MAX_DRAINS_PER_APP:
                raise InvalidParams(f"An app can have at most {MAX_DRAINS_PER_APP} log drains.")
            drain = LogDrain(app_id=app_id, url=url, token=new_drain_token())
            s.add(drain)
            s.flush()
            view = self._view(drain, Ref(app.id, app.name))
        self.sync(app_id)
        return view

    def find_drain(self, app_id: str, identity: str) -> LogDrainView:
        for d in self.drains(app_id):
            if identity in (d.id, d.url, d.token):
                return d
        raise NotFound(f"Couldn't find that log drain ({identity}).")

    def remove_drain(self, actor: UserView, app_id: str, identity: str) -> LogDrainView:
        drain = self.find_drain(app_id, identity)
        with self.store.session() as s:
            row = s.get(LogDrain, drain.id)
            if row is not None:
                s.delete(row)
        self.sync(app_id)
        return drain

    def sync(self, app_id: str) -> None:
        """Give the log router the app's complete set of drains (at start and on change):
        its own and its space's. On the event loop, as the router's drains run there."""
        self.port.set_drains(app_id, self._specs(app_id))

    def _specs(self, app_id: str) -> list[DrainSpec]:
        with self.store.session() as s:
            app = s.get(App, app_id)
            name = app.name if app else ""
            specs = [
                DrainSpec(id=d.id, url=d.url, token=d.token, app_name=name)
                for d in s.scalars(select(LogDrain).where(LogDrain.app_id == app_id))
            ]
            space = s.get(Space, app.space_id) if app and app.space_id else None
            if space is not None and space.log_drain_url:
                specs.append(space_drain_spec(space.id, space.log_drain_url, app_id, name))
        return specs

    def sync_all(self) -> None:
        """At start: every app's drains, in one pass over the table."""
        with self.store.session() as s:
            names = dict(s.execute(select(App.id, App.name)).all())
            specs: dict[str, list[DrainSpec]] = {app_id: [] for app_id in names}
            for d in s.scalars(select(LogDrain)):
                specs.setdefault(d.app_id, []).append(
                    DrainSpec(d.id, d.url, d.token, names.get(d.app_id, ""))
                )
            spaced = s.execute(
                select(App.id, Space.id, Space.log_drain_url)
                .join(Space, Space.id == App.space_id)
                .where(Space.log_drain_url.is_not(None))
            )
            for app_id, space_id, url in spaced:
                specs[app_id].append(space_drain_spec(space_id, str(url), app_id, names[app_id]))
        for app_id, drains in specs.items():
            if drains:
                self.port.set_drains(app_id, drains)

    def drain_state(self, drain_id: str) -> str | None:
        return self.port.drain_state(drain_id)

    # -- a space's drain (`heroku spaces:drains:get/set`) ----------------------------------
    @staticmethod
    def _space_view(sp: Space) -> SpaceDrainView:
        drain_id = space_drain_id(sp.id, sp.log_drain_url or "")
        return SpaceDrainView(
            drain_id,
            Ref(sp.id, sp.name),
            sp.log_drain_url or "",
            f"d.{drain_id}",
            sp.created_at,
            sp.updated_at,
        )

    @staticmethod
    def _space(s: Session, actor: UserView, identity: str, admin: bool = False) -> Space:
        sp = s.get(Space, identity)
        if sp is None:
            sp = s.scalar(select(Space).where(Space.name == identity))
        if sp is None:
            raise NotFound("Couldn't find that space.")
        Teams.check_member(s, s.get_one(Team, sp.team_id), actor, admin=admin)
        return sp

    def space_drain(self, actor: UserView, identity: str) -> SpaceDrainView:
        with self.store.session() as s:
            sp = self._space(s, actor, identity)
            if not sp.log_drain_url:
                raise NotFound(f"The space {sp.name} has no log drain.")
            return self._space_view(sp)

    def set_space_drain(self, actor: UserView, identity: str, url: object) -> SpaceDrainView:
        """The space's one drain (replacing any): a team admin's. Its apps' drains follow
        (call it on the event loop, as `add_drain`)."""
        url = self._checked_url(url)
        with self.store.session() as s:
            sp = self._space(s, actor, identity, admin=True)
            sp.log_drain_url = url
            s.flush()
            view = self._space_view(sp)
            app_ids = list(s.scalars(select(App.id).where(App.space_id == sp.id)))
        for app_id in app_ids:
            self.sync(app_id)
        return view
