"""The router's table: which hostnames reach which app, its web dynos, features and
certificates, kept current in the router workers (the RouteSink) as things change.

Changes are coalesced per loop turn: many changes to one app make one upsert. Certificates
change only with an app created, renamed or deleted, or an SNI endpoint change (ACM's
included). An app's entry carries the HTTP-01 tokens of its ACM orders, so router workers
keep answering them across a restart of the control plane.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, func, select, true

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

        def only(column: Any) -> Any:
            return column.in_(list(app_ids)) if app_ids is not None else true()

        if app_ids is not None and not app_ids:
            return []
        with self.store.session() as s:
            apps = s.execute(select(App.id, App.name, App.maintenance).where(only(App.id))).all()
            latest = (
                select(Release.app_id, func.max(Release.version).label("version"))
                .where(Release.status == ReleaseStatus.SUCCEEDED, only(Release.app_id))
                .group_by(Release.app_id)
                .subquery()
            )
            releases = {
                app_id: (slug_id, config or {})
                for app_id, slug_id, config in s.execute(
                    # A release has code when it has a slug (Cedar) or an OCI image (Fir).
                    select(
                        Release.app_id,
                        func.coalesce(Release.slug_id, Release.oci_image_id),
                        Release.config,
                    ).join(
                        latest,
                        and_(
                            Release.app_id == latest.c.app_id,
                            Release.version == latest.c.version,
                        ),
                    )
                )
            }
            webs = dict(
                s.execute(
                    select(Formation.app_id, Formation.quantity).where(
                        Formation.type == "web", only(Formation.app_id)
                    )
                ).all()
            )
            features: dict[str, set[str]] = {}
            for app_id, name in s.execute(
                select(AppFeature.app_id, AppFeature.name).where(
                    AppFeature.enabled.is_(True), only(AppFeature.app_id)
                )
            ):
                features.setdefault(app_id, set()).add(name)
            for app_id, signals in s.execute(
                select(TelemetryDrain.owner_id, TelemetryDrain.signals).where(
                    TelemetryDrain.owner_type == "app", only(TelemetryDrain.owner_id)
                )
            ):
                if {"traces", "metrics"} & set(signals):
                    features.setdefault(app_id, set()).add(TELEMETRY_FEATURE)
            domains: dict[str, list[str]] = {}
            for app_id, host in s.execute(
                select(Domain.app_id, Domain.hostname)
                .where(only(Domain.app_id))
                .order_by(Domain.created_at)
            ):
                domains.setdefault(app_id, []).append(host)
            inbound = inbound_rules_by_app(s, list(app_ids) if app_ids is not None else None)
        tokens = self.acm.http01_tokens(app_ids)
        return [
            self._route(
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
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        if self._certs_dirty:
            # Only the changed apps' certificates are looked at again: work in proportion
            # to what changed, not to the number of apps.
            changed, self._certs_dirty = list(self._certs_dirty), set()
            try:
                fresh = self._certificates_by_app(changed)
                for app_id in changed:
                    certs = fresh.get(app_id, [])
                    if self._certs.get(app_id, []) != certs:
                        self.sink.set_app_certificates(app_id, certs)
                    if certs:
                        self._certs[app_id] = certs
                    else:
                        self._certs.pop(app_id, None)
            except Exception:
                log.exception("updating the router's certificates failed")
        if not dirty:
            return
        try:
            routes = {r.id: r for r in self.app_routes(dirty)}
        except Exception:
            log.exception("updating the routes of %d apps failed", len(dirty))
            return
        for app_id in dirty:
            route = routes.get(app_id)
            if route is None:
                self.sink.remove_app(app_id)
            else:
                self.sink.upsert_app(route)
