"""The router's table: which hostnames reach which app, its web dynos, features and
certificates, kept current in the router workers (the RouteSink) as things change.

Changes are coalesced per loop turn: many changes to one app make one upsert. Certificates
change only with an app created, renamed or deleted, or an SNI endpoint change (ACM's
included). An app's entry carries the HTTP-01 tokens of its ACM orders, so router workers
keep answering them across a restart of the control plane.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select, true

from spruce.store.db import Store
from spruce.store.models import App, AppFeature, Domain, Formation, Release, TelemetryDrain

from .acm import Acm
from .certs import Certs
from .events import (
    AcmChallengesChanged,
    AppChanged,
    AppCreated,
    AppDeleted,
    CertificatesChanged,
    DomainsChanged,
    DynosChanged,
    EventBus,
    FormationChanged,
    ReleaseCreated,
    ReleaseFinished,
    TelemetryDrainsChanged,
)
from .model import AppRoute, DynoState, ReleaseStatus, RouteCertificate, RouteDyno
from .ports import CertificateIssuer, DynoBackend, RouteSink
from .settings import PlatformAddresses
from .spaces import inbound_rules_by_app

log = logging.getLogger(__name__)
_RouteRow = tuple[
    str,
    str,
    bool,
    tuple[str | None, dict[str, Any]] | None,
    int,
    set[str],
    list[str],
    tuple[tuple[str, str], ...],
    tuple[tuple[str, str], ...] | None,
]
"""One app's route as the store has it: id, name, maintenance, (code, config) of the current
release, web quantity, features, custom hostnames, ACME challenges, inbound rules."""
TELEMETRY_FEATURE = "spruce-telemetry"
"""In an app's route when a telemetry drain takes traces or metrics: the router then reports
the app's exchanges as spans (off its fast lanes; apps without a drain pay nothing)."""
ROUTER_FEATURES = frozenset(
    {
        "http-session-affinity",
        "preboot",
        "http-disable-keepalive-to-dyno",
        "http-disable-http2",
        "http-end-to-end-continue",
        TELEMETRY_FEATURE,
    }
)


_AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class _RouteStatements:
    apps: _AnySelect
    releases: _AnySelect
    webs: _AnySelect
    features: _AnySelect
    telemetry: _AnySelect
    domains: _AnySelect


@functools.cache
def _route_statements(every_app: bool) -> _RouteStatements:
    """The route table's selects, built once (building one costs more than running it):
    for every app, or for the apps of the `ids` parameter."""

    def only(column: Any) -> Any:
        return true() if every_app else column.in_(bindparam("ids", expanding=True))

    latest = (
        select(Release.app_id, func.max(Release.version).label("version"))
        .where(Release.status == ReleaseStatus.SUCCEEDED, only(Release.app_id))
        .group_by(Release.app_id)
        .subquery()
    )
    return _RouteStatements(
        apps=select(App.id, App.name, App.maintenance).where(only(App.id)),
        # A release has code when it has a slug (Cedar) or an OCI image (Fir).
        releases=select(
            Release.app_id, func.coalesce(Release.slug_id, Release.oci_image_id), Release.config
        ).join(
            latest,
            and_(Release.app_id == latest.c.app_id, Release.version == latest.c.version),
        ),
        webs=select(Formation.app_id, Formation.quantity).where(
            Formation.type == "web", only(Formation.app_id)
        ),
        features=select(AppFeature.app_id, AppFeature.name).where(
            AppFeature.enabled.is_(True), only(AppFeature.app_id)
        ),
        telemetry=select(TelemetryDrain.owner_id, TelemetryDrain.signals).where(
            TelemetryDrain.owner_type == "app", only(TelemetryDrain.owner_id)
        ),
        domains=select(Domain.app_id, Domain.hostname)
        .where(only(Domain.app_id))
        .order_by(Domain.created_at),
    )


class Routing:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        backend: DynoBackend,
        certs: Certs,
        acm: Acm,
        issuer: CertificateIssuer,
        sink: RouteSink,
        addresses: PlatformAddresses,
        default_certificate: RouteCertificate | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.certs = certs
        self.acm = acm
        self.issuer = issuer
        self.sink = sink
        self.addresses = addresses
        self.default_certificate = default_certificate
        self._dirty: set[str] = set()
        self._certs_dirty: set[str] = set()
        self._certs: dict[str, list[RouteCertificate]] = {}
        self._flush_scheduled = False
        self._flushing: asyncio.Task[None] | None = None
        self._gone: set[str] = set()
        for kind in (
            AppCreated,
            ReleaseCreated,
            ReleaseFinished,
            FormationChanged,
            DomainsChanged,
            DynosChanged,
            AcmChallengesChanged,
            TelemetryDrainsChanged,
        ):
            events.subscribe(kind, lambda e: self.mark(e.app_id))
        events.subscribe(AppChanged, self._on_app_changed)
        events.subscribe(CertificatesChanged, self._on_certs)
        events.subscribe(AppCreated, self._on_certs)
        events.subscribe(AppDeleted, self._on_deleted)

    # -- the table -------------------------------------------------------------------------
    def app_route(self, app_id: str) -> AppRoute | None:
        routes = self.app_routes([app_id])
        return routes[0] if routes else None

    def app_routes(self, app_ids: Collection[str] | None = None) -> list[AppRoute]:
        """The routes of these apps (None: every app), in seven queries however many."""
        return [self._route(*row) for row in self._route_rows(app_ids)]

    def _route_rows(self, app_ids: Collection[str] | None) -> list[_RouteRow]:
        """What the store says about these apps' routes: safe off the loop (it reads only
        the store); the dynos are added on the loop by `_route`."""

        if app_ids is not None and not app_ids:
            return []
        q = _route_statements(every_app=app_ids is None)
        params = {"ids": list(app_ids)} if app_ids is not None else {}
        with self.store.reading() as c:
            apps = c.execute(q.apps, params).all()
            releases = {
                app_id: (code_id, config or {})
                for app_id, code_id, config in c.execute(q.releases, params)
            }
            webs: dict[str, int] = {app_id: n for app_id, n in c.execute(q.webs, params)}
            features: dict[str, set[str]] = {}
            for app_id, name in c.execute(q.features, params):
                features.setdefault(app_id, set()).add(name)
            for app_id, signals in c.execute(q.telemetry, params):
                if {"traces", "metrics"} & set(signals):
                    features.setdefault(app_id, set()).add(TELEMETRY_FEATURE)
            domains: dict[str, list[str]] = {}
            for app_id, host in c.execute(q.domains, params):
                domains.setdefault(app_id, []).append(host)
            inbound = inbound_rules_by_app(c, list(app_ids) if app_ids is not None else None)
        tokens = self.acm.http01_tokens(app_ids)
        return [
            (
                app_id,
                name,
                maintenance,
                releases.get(app_id),
                webs.get(app_id, 0),
                features.get(app_id, set()),
                domains.get(app_id, []),
                tokens.get(app_id, ()),
                inbound.get(app_id),
            )
            for app_id, name, maintenance in apps
        ]

    def _route(
        self,
        app_id: str,
        name: str,
        maintenance: bool,
        release: tuple[str | None, dict[str, Any]] | None,
        web_quantity: int,
        features: set[str],
        custom: list[str],
        acme_challenges: tuple[tuple[str, str], ...],
        inbound_rules: tuple[tuple[str, str], ...] | None = None,
    ) -> AppRoute:
        slug_id, config = release if release is not None else (None, {})
        up = {e.dyno_name for e in self.backend.web_endpoints(app_id)}
        sleeping = False
        dynos = []
        for d in self.backend.dynos(app_id):
            if d.type != "web":  # one-offs (run.1234) have their own type
                continue
            state = d.state
            if state == DynoState.IDLE:
                sleeping = True
                state = DynoState.DOWN
            elif state == DynoState.UP and d.name not in up:
                state = DynoState.DOWN  # retiring after a preboot switch, or stopping
            if state not in (DynoState.UP, DynoState.STARTING, DynoState.CRASHED):
                state = DynoState.DOWN
            dynos.append(RouteDyno(d.name, d.host, d.port or 0, str(state)))
        return AppRoute(
            id=app_id,
            name=name,
            hostnames=(self.addresses.default_hostname(name), *custom),
            maintenance=maintenance,
            released=bool(slug_id),
            features=tuple(sorted(features & ROUTER_FEATURES)),
            maintenance_page_url=config.get("MAINTENANCE_PAGE_URL") or None,
            error_page_url=config.get("ERROR_PAGE_URL") or None,
            web_quantity=web_quantity or 0,
            sleeping=sleeping,
            dynos=tuple(dynos),
            acme_challenges=acme_challenges,
            inbound_rules=inbound_rules,
        )

    def certificates(self) -> list[RouteCertificate]:
        """Each app's own certificate (the issuer's) and every SNI endpoint's (ACM's too)."""
        return [c for certs in self._certificates_by_app().values() for c in certs]

    def _certificates_by_app(
        self, app_ids: list[str] | None = None
    ) -> dict[str, list[RouteCertificate]]:
        q = select(App.id, App.name)
        if app_ids is not None:
            q = q.where(App.id.in_(app_ids))
        with self.store.session() as s:
            apps = list(s.execute(q).all())
        by_app = {app_id: [self._app_certificate(app_id, name)] for app_id, name in apps}
        for owner, cert in self.certs.router_certificates(app_ids):
            if owner in by_app:
                by_app[owner].append(cert)
        return by_app

    def _app_certificate(self, app_id: str, name: str) -> RouteCertificate:
        host = self.addresses.default_hostname(name)
        issued = self.issuer.issue([host])
        return RouteCertificate(f"default-{app_id}", (host,), issued.cert_pem, issued.key_pem)

    def publish_all(self) -> None:
        """The whole table, at start: the workers begin with it."""
        self._certs = self._certificates_by_app()
        self.sink.replace_table(self.app_routes(), self._certs, self.default_certificate)

    # -- following changes ------------------------------------------------------------------
    def _on_app_changed(self, event: AppChanged) -> None:
        if event.renamed:  # the app's own certificate names the old hostname
            self._certs_dirty.add(event.app_id)
        self.mark(event.app_id)

    def _on_certs(self, event: CertificatesChanged | AppCreated) -> None:
        self._certs_dirty.add(event.app_id)
        self.mark(event.app_id)

    def _on_deleted(self, event: AppDeleted) -> None:
        self._dirty.discard(event.app_id)
        self._gone.add(event.app_id)  # a flush reading meanwhile must not bring it back
        self.sink.remove_app(event.app_id)
        self._certs_dirty.add(event.app_id)
        self._schedule()

    def mark(self, app_id: str) -> None:
        self._dirty.add(app_id)
        self._schedule()

    def _schedule(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # services driven without a loop (scripts, a store being seeded): no batching
            # to wait for, so the change goes out now
            self.flush_now()
            return
        self._flush_scheduled = True
        loop.call_soon(self._begin_flush)

    def flush_now(self) -> None:
        """Every change marked so far into the sink, here (no event loop is running)."""
        while self._dirty or self._certs_dirty:
            dirty, self._dirty = self._dirty, set()
            changed, self._certs_dirty = list(self._certs_dirty), set()
            self._gone = set()
            rows, fresh = self._read(dirty, changed)
            self._apply(dirty, rows, changed, fresh)

    def _begin_flush(self) -> None:
        self._flush_scheduled = False
        if self._flushing is None and (self._dirty or self._certs_dirty):
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def settled(self) -> None:
        """Until the changes marked so far are in the sink (ACM awaits it before the CA
        fetches HTTP-01 tokens; tests too)."""
        while self._flush_scheduled or self._flushing is not None:
            task = self._flushing
            if task is not None:
                await asyncio.shield(task)
            else:
                await asyncio.sleep(0)

    async def _flush(self) -> None:
        """The changed apps' routes and certificates into the sink, coalesced: what changes
        while one flush reads is taken by the next round. The store is read in a worker
        thread (never on the event loop); the sink is fed on the loop, in order."""
        try:
            while self._dirty or self._certs_dirty:
                dirty, self._dirty = self._dirty, set()
                changed, self._certs_dirty = list(self._certs_dirty), set()
                self._gone = set()
                try:
                    rows, fresh = await self.store.in_worker(self._read, dirty, changed)
                except Exception:
                    log.exception("reading the routes of %d apps failed", len(dirty))
                    continue
                try:
                    self._apply(dirty, rows, changed, fresh)
                except Exception:
                    log.exception("updating the router's table failed")
        finally:
            self._flushing = None

    def _read(
        self, dirty: set[str], certs_changed: list[str]
    ) -> tuple[list[_RouteRow], dict[str, list[RouteCertificate]] | None]:
        fresh = None
        if certs_changed:
            # Only the changed apps' certificates are looked at again: work in proportion
            # to what changed, not to the number of apps.
            try:
                fresh = self._certificates_by_app(certs_changed)
            except Exception:
                log.exception("updating the router's certificates failed")
        return (self._route_rows(dirty) if dirty else []), fresh

    def _apply(
        self,
        dirty: set[str],
        rows: list[_RouteRow],
        certs_changed: list[str],
        fresh: dict[str, list[RouteCertificate]] | None,
    ) -> None:
        gone = self._gone
        if fresh is not None:
            for app_id in certs_changed:
                certs = [] if app_id in gone else fresh.get(app_id, [])
                if self._certs.get(app_id, []) != certs:
                    self.sink.set_app_certificates(app_id, certs)
                if certs:
                    self._certs[app_id] = certs
                else:
                    self._certs.pop(app_id, None)
        routes = {row[0]: row for row in rows}
        for app_id in dirty:
            row = routes.get(app_id)
            if row is None or app_id in gone:
                self.sink.remove_app(app_id)
            else:
                self.sink.upsert_app(self._route(*row))
