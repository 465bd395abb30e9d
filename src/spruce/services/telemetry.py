"""Telemetry drains: where a Fir app's OpenTelemetry signals go (the TelemetryExporter port).

The rules of Heroku's `telemetry-drain` resource (v6 schema): an owner (a Fir app; spaces
when they exist), a non-empty set of signals, and an OTLP exporter with at most 20 headers.
The exporter's headers often carry an API key, so they are sealed in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, OciImage, Release, Slug, Space, TelemetryDrain

from .apps import Apps
from .errors import InvalidParams, NotFound, ServiceError
from .events import (
    AppChanged,
    AppDeleted,
    EventBus,
    ReleaseCreated,
    ReleaseFinished,
    TelemetryDrainsChanged,
)
from .model import Generation, Signal, TelemetryDrainSpec, TelemetryTarget
from .ports import DynoBackend, LogPort, TelemetryExporter
from .sealing import Sealer
from .settings import PlatformAddresses
from .spaces import Spaces
from .views import Ref, UserView

log = logging.getLogger(__name__)
USAGE_INTERVAL = 5.0
"""How often the dynos of apps with a metrics drain are sampled (memory, CPU, restarts)."""
INGEST_SECRET = "otlp-ingest.secret"

EXPORTER_TYPES = ("otlphttp", "otlp")
"""otlphttp: protobuf over HTTP to a URL; otlp: gRPC to host:port."""
MAX_ENDPOINT = 1000
MAX_HEADERS = 20
MAX_HEADER_VALUE = 1000
HEADER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,100}$")
HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):[0-9]{1,5}$")
CEDAR_REFUSED = (
    "Telemetry drains are only available for Fir generation apps and spaces. "
    "See https://devcenter.heroku.com/articles/heroku-telemetry."
)


@dataclass(frozen=True)
class TelemetryDrainView:
    id: str
    owner_type: str
    owner: Ref
    signals: tuple[str, ...]
    exporter_type: str
    endpoint: str
    headers: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime


def _signals(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidParams("signals must be a non-empty array of traces, metrics or logs.")
    out: list[str] = []
    for s in value:
        if not isinstance(s, str) or s not in tuple(Signal):
            raise InvalidParams(f"Invalid signal {s!r}: signals are traces, metrics and logs.")
        if s in out:
            raise InvalidParams(f"The signal {s} is given twice.")
        out.append(s)
    return out


def _headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams("exporter.headers must be an object of strings.")
    if len(value) > MAX_HEADERS:
        raise InvalidParams(f"exporter.headers can have at most {MAX_HEADERS} entries.")
    for k, v in value.items():
        if not isinstance(k, str) or not HEADER_NAME.match(k):
            raise InvalidParams(
                f"Invalid header name {str(k)[:100]!r}: use letters, digits, - and _ (at most 100)."
            )
        if not isinstance(v, str) or len(v) > MAX_HEADER_VALUE:
            raise InvalidParams(
                f"The value of header {k} must be a string of at most {MAX_HEADER_VALUE} "
                "characters."
            )
    return dict(value)


def check_exporter(kind: object, endpoint: object) -> tuple[str, str]:
    """The exporter's type and endpoint, or InvalidParams with a sentence."""
    if kind not in EXPORTER_TYPES:
        raise InvalidParams("exporter.type must be otlphttp or otlp.")
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise InvalidParams("exporter.endpoint is required.")
    endpoint = endpoint.strip()
    if len(endpoint) > MAX_ENDPOINT:
        raise InvalidParams(f"exporter.endpoint must be at most {MAX_ENDPOINT} characters.")
    if kind == "otlphttp":
        u = urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise InvalidParams(
                "An otlphttp exporter's endpoint must be an http(s) URL, "
                "e.g. https://otlp.example.com/v1/traces."
            )
    elif not HOST_PORT.match(endpoint):
        raise InvalidParams(
            "An otlp (gRPC) exporter's endpoint must be host:port, e.g. otlp.example.com:4317."
        )
    return str(kind), endpoint


_HAS_DRAINS = (
    select(TelemetryDrain.id)
    .where(
        or_(
            TelemetryDrain.owner_id == bindparam("app_id"),
            TelemetryDrain.owner_id
            == select(App.space_id).where(App.id == bindparam("app_id")).scalar_subquery(),
        )
    )
    .limit(1)
)
"""Whether an app has telemetry drains, its own or its space's (built once)."""


class TelemetryDrains:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        apps: Apps,
        spaces: Spaces,
        exporter: TelemetryExporter,
        dynos: DynoBackend,
        logs: LogPort,
        sealer: Sealer,
        addresses: PlatformAddresses,
        home: Path,
    ) -> None:
        self.store = store
        self.events = events
        self.apps = apps
        self.spaces = spaces
        self.exporter = exporter
        self.dynos = dynos
        self.logs = logs
        self._drops: dict[str, int] = {}  # drain id -> drops already reported
        self._drain_apps: dict[str, tuple[str, str]] = {}  # drain id -> (app id, endpoint)
        self.sealer = sealer
        self.addresses = addresses
        self._secret_path = Path(home) / INGEST_SECRET
        self._secret: bytes | None = None
        self._metric_apps: set[str] = set()
        self._sampler: asyncio.Task[None] | None = None
        self._resyncs: set[asyncio.Task[None]] = set()
        # a new release changes the resource (service.version, heroku.release.commit)
        events.subscribe(ReleaseCreated, lambda e: None if e.pending else self._resync(e.app_id))
        events.subscribe(ReleaseFinished, lambda e: self._resync(e.app_id))
        events.subscribe(AppChanged, lambda e: self._resync(e.app_id) if e.renamed else None)
        events.subscribe(AppDeleted, lambda e: exporter.remove_app(e.app_id))

    # -- views ----------------------------------------------------------------------------
    def _view(self, d: TelemetryDrain, owner: Ref) -> TelemetryDrainView:
        return TelemetryDrainView(
            id=d.id,
            owner_type=d.owner_type,
            owner=owner,
            signals=tuple(d.signals),
            exporter_type=d.exporter_type,
            endpoint=d.endpoint,
            headers=json.loads(self.sealer.open(d.headers_sealed)),
            created_at=d.created_at,
            updated_at=d.updated_at,
        )

    def _owned(self, s: Session, d: TelemetryDrain) -> Ref:
        if d.owner_type == "space":
            space = s.get(Space, d.owner_id)
            return Ref(d.owner_id, space.name if space else "")
        app = s.get(App, d.owner_id)
        return Ref(d.owner_id, app.name if app else "")

    def for_space(self, actor: UserView, identity: str) -> list[TelemetryDrainView]:
        space = self.spaces.get(actor, identity)
        with self.store.session() as s:
            rows = s.scalars(
                select(TelemetryDrain)
                .where(TelemetryDrain.owner_type == "space", TelemetryDrain.owner_id == space.id)
                .order_by(TelemetryDrain.created_at, TelemetryDrain.id)
            )
            return [self._view(d, Ref(space.id, space.name)) for d in rows]

    def _space_apps(self, s: Session, space_id: str) -> list[str]:
        return list(s.scalars(select(App.id).where(App.space_id == space_id)))

    # -- the API's calls ------------------------------------------------------------------
    def for_app(self, actor: UserView, identity: str) -> list[TelemetryDrainView]:
        app = self.apps.get(actor, identity)
        with self.store.session() as s:
            rows = s.scalars(
                select(TelemetryDrain)
                .where(TelemetryDrain.owner_type == "app", TelemetryDrain.owner_id == app.id)
                .order_by(TelemetryDrain.created_at, TelemetryDrain.id)
            )
            return [self._view(d, app.ref) for d in rows]

    def get(self, actor: UserView, drain_id: str) -> TelemetryDrainView:
        with self.store.session() as s:
            d = self._row(s, actor, drain_id)
            return self._view(d, self._owned(s, d))

    def _row(self, s: Session, actor: UserView, drain_id: str) -> TelemetryDrain:
        try:
            uuid.UUID(drain_id)
        except ValueError:
            raise NotFound("Couldn't find that telemetry drain.") from None
        d = s.get(TelemetryDrain, drain_id)
        if d is None:
            raise NotFound("Couldn't find that telemetry drain.")
        if d.owner_type == "space":
            try:
                self.spaces.get(actor, d.owner_id)
            except ServiceError:
                raise NotFound("Couldn't find that telemetry drain.") from None
            return d
        app = s.get(App, d.owner_id)
        if app is None:
            raise NotFound("Couldn't find that telemetry drain.")
        try:
            self.apps.check_access(s, app, actor, False)
        except ServiceError:
            raise NotFound("Couldn't find that telemetry drain.") from None
        return d

    def create(self, actor: UserView, body: object) -> TelemetryDrainView:
        if not isinstance(body, dict):
            raise InvalidParams("The request body must be a JSON object.")
        missing = [k for k in ("owner", "signals", "exporter") if k not in body]
        if missing:
            raise InvalidParams(f"Missing required params: {', '.join(missing)}.")
        extra = sorted(set(body) - {"owner", "signals", "exporter"})
        if extra:
            raise InvalidParams(f"Unexpected params: {', '.join(extra)}.")
        owner, exporter = body["owner"], body["exporter"]
        if not isinstance(owner, dict) or not isinstance(owner.get("id"), str):
            raise InvalidParams("owner must be an object with an id and a type (app or space).")
        if owner.get("type") not in ("app", "space"):
            raise InvalidParams("owner.type must be app or space.")
        signals = _signals(body["signals"])
        if not isinstance(exporter, dict):
            raise InvalidParams("exporter must be an object with a type and an endpoint.")
        kind, endpoint = check_exporter(exporter.get("type"), exporter.get("endpoint"))
        headers = _headers(exporter.get("headers"))
        if owner["type"] == "space":
            space = self.spaces.get(actor, owner["id"])
            if space.generation != Generation.FIR:
                raise InvalidParams(CEDAR_REFUSED)
            owner_ref, app_id = Ref(space.id, space.name), None
        else:
            app = self.apps.get(actor, owner["id"])
            if app.generation != Generation.FIR:
                raise InvalidParams(CEDAR_REFUSED)
            owner_ref, app_id = app.ref, app.id
        with self.store.session() as s:
            d = TelemetryDrain(
                # to the microsecond: an owner's drains list in the order they were added
                created_at=dt.datetime.now(dt.UTC),
                owner_type=owner["type"],
                owner_id=owner_ref.id,
                app_id=app_id,
                signals=signals,
                exporter_type=kind,
                endpoint=endpoint,
                headers_sealed=self.sealer.seal(json.dumps(headers)),
            )
            s.add(d)
            s.flush()
            view = self._view(d, owner_ref)
        self._changed(owner_ref.id)
        return view

    def update(self, actor: UserView, drain_id: str, body: object) -> TelemetryDrainView:
        if not isinstance(body, dict):
            raise InvalidParams("The request body must be a JSON object.")
        extra = sorted(set(body) - {"signals", "exporter"})
        if extra:
            raise InvalidParams(f"Unexpected params: {', '.join(extra)}.")
        with self.store.session() as s:
            d = self._row(s, actor, drain_id)
            if "signals" in body:
                d.signals = _signals(body["signals"])
            if "exporter" in body:
                exporter = body["exporter"]
                if not isinstance(exporter, dict):
                    raise InvalidParams("exporter must be an object.")
                # The CLI sends only what changes: merge a partial exporter.
                kind, endpoint = check_exporter(
                    exporter.get("type", d.exporter_type), exporter.get("endpoint", d.endpoint)
                )
                d.exporter_type, d.endpoint = kind, endpoint
                if "headers" in exporter:
                    d.headers_sealed = self.sealer.seal(json.dumps(_headers(exporter["headers"])))
            d.updated_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
            s.flush()
            view = self._view(d, self._owned(s, d))
        self._changed(view.owner.id)
        return view

    def delete(self, actor: UserView, drain_id: str) -> TelemetryDrainView:
        with self.store.session() as s:
            d = self._row(s, actor, drain_id)
            view = self._view(d, self._owned(s, d))
            s.delete(d)
        self._changed(view.owner.id)
        return view

    # -- the exporter's view --------------------------------------------------------------
    def target(self, app_id: str) -> TelemetryTarget:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                return TelemetryTarget(app_id, (), ())
            # The app's own drains, and its space's: a space drain takes every app in it.
            owned = (TelemetryDrain.owner_type == "app") & (TelemetryDrain.owner_id == app_id)
            if app.space_id is not None:
                in_space = (TelemetryDrain.owner_type == "space") & (
                    TelemetryDrain.owner_id == app.space_id
                )
                owned = owned | in_space
            rows = s.scalars(select(TelemetryDrain).where(owned)).all()
            drains = tuple(
                TelemetryDrainSpec(
                    id=d.id,
                    signals=frozenset(d.signals),
                    exporter_type=d.exporter_type,
                    endpoint=d.endpoint,
                    headers=tuple(sorted(json.loads(self.sealer.open(d.headers_sealed)).items())),
                )
                for d in rows
            )
            return TelemetryTarget(app_id, resource_attributes(s, app), drains)

    def _changed(self, owner_id: str) -> None:
        """An app's drains changed, or a space's (then every app in it)."""
        with self.store.session() as s:
            app_ids = [owner_id] if s.get(App, owner_id) else self._space_apps(s, owner_id)
        for app_id in app_ids:
            self.sync(app_id)
            self.events.publish(TelemetryDrainsChanged(app_id))

    def _has_drains(self, app_id: str) -> bool:
        with self.store.reading() as c:
            return c.execute(_HAS_DRAINS, {"app_id": app_id}).first() is not None

    def _resync(self, app_id: str) -> None:
        """After a release: most apps have no drain, and finding that out reads the store,
        which the event loop never waits on (a worker thread asks)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): ask here
            if self._has_drains(app_id):
                self.sync(app_id)
            return
        task = loop.create_task(self._resync_soon(app_id))
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _resync_soon(self, app_id: str) -> None:
        try:
            if await self.store.in_worker(self._has_drains, app_id):
                self.sync(app_id)
        except Exception:
            log.exception("resynchronising the telemetry of %s failed", app_id)

    def sync(self, app_id: str) -> None:
        """Hand the exporter the app's complete target (at start, and on every change)."""
        target = self.target(app_id)
        for known in [k for k, (a, _) in self._drain_apps.items() if a == app_id]:
            del self._drain_apps[known]
        for d in target.drains:
            self._drain_apps[d.id] = (app_id, d.endpoint)
        if any("metrics" in d.signals for d in target.drains):
            self._metric_apps.add(app_id)
        else:
            self._metric_apps.discard(app_id)
        self.exporter.set_target(target)

    def sync_all(self) -> None:
        with self.store.session() as s:
            ids: set[str] = set()
            for owner_type, owner_id in s.execute(
                select(TelemetryDrain.owner_type, TelemetryDrain.owner_id).distinct()
            ):
                ids.update(self._space_apps(s, owner_id) if owner_type == "space" else [owner_id])
        for app_id in sorted(ids):
            self.sync(app_id)

    # -- dyno metrics ---------------------------------------------------------------------
    def start(self) -> None:
        self._sampler = asyncio.ensure_future(self._sample())

    async def stop(self) -> None:
        task, self._sampler = self._sampler, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sample(self) -> None:
        while True:
            for app_id in list(self._metric_apps):
                try:
                    self.exporter.record_dyno_usage(app_id, self.dynos.usage(app_id))
                except Exception:  # one app's odd dyno must not end the sampling
                    log.exception("sampling the dynos of %s failed", app_id)
            self.report_drops()
            await asyncio.sleep(USAGE_INTERVAL)

    def report_drops(self) -> None:
        """A line in the app's log when a drain lost signals since the last look (the
        collector was away, slow or refusing): `heroku[telemetry]: Error L10 ...`."""
        for drain_id, (app_id, endpoint) in list(self._drain_apps.items()):
            total = self.exporter.drops(drain_id)
            seen = self._drops.get(drain_id, 0)
            if total > seen:
                self._drops[drain_id] = total
                self.logs.emit(
                    app_id,
                    "heroku",
                    "telemetry",
                    f"Error L10 (output buffer overflow): telemetry drain {drain_id} "
                    f"({urlsplit(endpoint).hostname or endpoint.rsplit(':', 1)[0]}) dropped "
                    f"{total - seen} signals; the collector is unreachable, slow or refusing",
                )

    # -- the platform's OTLP endpoint for dynos ----------------------------------------------
    def _key(self) -> bytes:
        if self._secret is None:
            path = self._secret_path
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
            self._secret = path.read_text().strip().encode()
        return self._secret

    def ingest_token(self, app_id: str) -> str:
        return hmac.new(self._key(), app_id.encode(), hashlib.sha256).hexdigest()[:40]

    def otlp_endpoint(self, app_id: str) -> str:
        """OTEL_EXPORTER_OTLP_ENDPOINT for the app's dynos: the SDK adds /v1/<signal>."""
        base = self.addresses.api_url.rstrip("/")
        return f"{base}/spruce/otlp/{app_id}/{self.ingest_token(app_id)}"

    def receive(
        self, app_id: str, token: str, signal: str, payload: bytes, content_type: str
    ) -> None:
        """Signals a dyno exported to the platform: on to the app's drains."""
        if not hmac.compare_digest(token, self.ingest_token(app_id)):
            raise NotFound("Couldn't find that OTLP endpoint.")
        if signal not in tuple(Signal):
            raise NotFound("Couldn't find that OTLP endpoint.")
        try:
            self.exporter.receive(app_id, signal, payload, content_type)
        except ValueError as e:
            raise InvalidParams(str(e)) from None


def resource_attributes(s: Session, app: App) -> tuple[tuple[str, str], ...]:
    """Heroku's resource attributes (OTel semantic conventions, cloud_provider/heroku.md)
    from the app and its current release; service.instance.id is added per dyno."""
    attrs = {
        "cloud.provider": "heroku",
        "cloud.region": app.region,
        "heroku.app.id": app.id,
        "heroku.app.name": app.name,
        "service.name": app.name,
    }
    release = s.scalars(
        select(Release)
        .where(Release.app_id == app.id, Release.status == "succeeded")
        .order_by(Release.version.desc())
        .limit(1)
    ).first()
    if release is not None:
        attrs["service.version"] = f"v{release.version}"
        attrs["heroku.release.version"] = f"v{release.version}"
        attrs["heroku.release.creation_timestamp"] = release.created_at.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        commit = None
        if release.oci_image_id:
            image = s.get(OciImage, release.oci_image_id)
            commit = image.commit if image else None
        elif release.slug_id:
            slug = s.get(Slug, release.slug_id)
            commit = slug.commit if slug else None
        if commit:
            attrs["heroku.release.commit"] = commit
    return tuple(sorted(attrs.items()))
