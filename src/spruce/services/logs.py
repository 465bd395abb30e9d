"""Log sessions and log drains: the rules in front of the log router."""

from __future__ import annotations

from sqlalchemy import select

from spruce.logs import DrainSpec, LogRouter, LogSessionError, new_drain_token, validate_drain_url
from spruce.logs.drains import DrainURLError
from spruce.store.db import Store
from spruce.store.models import App, LogDrain, User

from .errors import InvalidParams, NotFound
from .events import EventBus

MAX_DRAINS_PER_APP = 5  # Heroku's limit on log drains per app


class Logs:
    def __init__(self, store: Store, events: EventBus, router: LogRouter) -> None:
        self.store = store
        self.events = events
        self.router = router

    def api_line(self, app_id: str, message: str) -> None:
        self.router.emit(app_id, "app", "api", message)

    # -- sessions -------------------------------------------------------------------
    def create_session(
        self,
        app_id: str,
        lines: object = None,
        tail: object = False,
        source: object = None,
        dyno: object = None,
    ) -> str:
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
            return self.router.create_session(app_id, n, tail, source or None, dyno or None)  # type: ignore[arg-type]
        except LogSessionError as e:
            raise InvalidParams(str(e)) from None

    # -- drains ---------------------------------------------------------------------
    def drains(self, app_id: str) -> list[LogDrain]:
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(LogDrain).where(LogDrain.app_id == app_id).order_by(LogDrain.created_at)
                )
            )

    def add_drain(self, actor: User, app_id: str, url: object) -> LogDrain:
        if not isinstance(url, str) or not url.strip():
            raise InvalidParams("url is required.")
        url = url.strip()
        try:
            validate_drain_url(url)
        except (DrainURLError, ValueError) as e:
            raise InvalidParams(str(e)) from None
        with self.store.session() as s:
            if s.get(App, app_id) is None:
                raise NotFound("Couldn't find that app.")
            existing = list(s.scalars(select(LogDrain).where(LogDrain.app_id == app_id)))
            if any(d.url == url for d in existing):
                raise InvalidParams("This drain is already added to this app.")
            if len(existing) >= MAX_DRAINS_PER_APP:
                raise InvalidParams(f"An app can have at most {MAX_DRAINS_PER_APP} log drains.")
            drain = LogDrain(app_id=app_id, url=url, token=new_drain_token())
            s.add(drain)
        self.sync(app_id)
        return drain

    def find_drain(self, app_id: str, identity: str) -> LogDrain:
        for d in self.drains(app_id):
            if identity in (d.id, d.url, d.token):
                return d
        raise NotFound(f"Couldn't find that log drain ({identity}).")

    def remove_drain(self, actor: User, app_id: str, identity: str) -> LogDrain:
        drain = self.find_drain(app_id, identity)
        with self.store.session() as s:
            row = s.get(LogDrain, drain.id)
            if row is not None:
                s.delete(row)
        self.sync(app_id)
        return drain

    def sync(self, app_id: str) -> None:
        """Give the log router the app's complete set of drains (at start and on change)."""
        with self.store.session() as s:
            app = s.get(App, app_id)
            name = app.name if app else ""
        specs = [
            DrainSpec(id=d.id, url=d.url, token=d.token, app_name=name) for d in self.drains(app_id)
        ]
        self.router.set_drains(app_id, specs)

    def drain_status(self, drain_id: str) -> str | None:
        try:
            return self.router.drain_status(drain_id).state
        except KeyError:
            return None
