"""The router's table: which hostnames reach which app, its web dynos, features and
certificates, kept current in the router workers (the RouteSink) as things change.

Changes are coalesced per loop turn: many changes to one app make one upsert. Certificates
change only with an app created, renamed or deleted, or an SNI endpoint change.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from spruce.store.db import Store
from spruce.store.models import App, AppFeature, Domain, Formation, Release

from .certs import Certs
from .events import (
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
)
from .model import AppRoute, DynoState, ReleaseStatus, RouteCertificate, RouteDyno
from .ports import CertificateIssuer, DynoBackend, RouteSink
from .settings import PlatformAddresses

log = logging.getLogger(__name__)
ROUTER_FEATURES = frozenset(
    {
        "http-session-affinity",
        "preboot",
        "http-disable-keepalive-to-dyno",
        "http-disable-http2",
        "http-end-to-end-continue",
    }
)


class Routing:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        backend: DynoBackend,
        certs: Certs,
        issuer: CertificateIssuer,
        sink: RouteSink,
        addresses: PlatformAddresses,
        default_certificate: RouteCertificate | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.certs = certs
        self.issuer = issuer
        self.sink = sink
        self.addresses = addresses
        self.default_certificate = default_certificate
        self._dirty: set[str] = set()
        self._certs_dirty = False
        self._flush_scheduled = False
        for kind in (
            AppCreated,
            ReleaseCreated,
            ReleaseFinished,
            FormationChanged,
            DomainsChanged,
            DynosChanged,
        ):
            events.subscribe(kind, lambda e: self.mark(e.app_id))
        events.subscribe(AppChanged, self._on_app_changed)
        events.subscribe(CertificatesChanged, self._on_certs)
        events.subscribe(AppCreated, self._on_certs)
        events.subscribe(AppDeleted, self._on_deleted)

    # -- the table -------------------------------------------------------------------------
    def app_route(self, app_id: str) -> AppRoute | None:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                return None
            release = s.scalar(
                select(Release)
                .where(Release.app_id == app_id, Release.status == ReleaseStatus.SUCCEEDED)
                .order_by(Release.version.desc())
                .limit(1)
            )
            config = dict(release.config or {}) if release else {}
            web = s.scalar(
                select(Formation.quantity).where(
                    Formation.app_id == app_id, Formation.type == "web"
                )
            )
            features = set(
                s.scalars(
                    select(AppFeature.name).where(
                        AppFeature.app_id == app_id, AppFeature.enabled.is_(True)
                    )
                )
            )
            custom = list(s.scalars(select(Domain.hostname).where(Domain.app_id == app_id)))
            name, maintenance = app.name, app.maintenance
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
            released=bool(release and (release.slug_id or release.oci_image_id)),
            features=tuple(sorted(features & ROUTER_FEATURES)),
            maintenance_page_url=config.get("MAINTENANCE_PAGE_URL") or None,
            error_page_url=config.get("ERROR_PAGE_URL") or None,
            web_quantity=web or 0,
            sleeping=sleeping,
            dynos=tuple(dynos),
        )

    def certificates(self) -> list[RouteCertificate]:
        """Each app's own certificate (the issuer's) and every uploaded one."""
        with self.store.session() as s:
            apps = list(s.execute(select(App.id, App.name)).all())
        out = [self._app_certificate(app_id, name) for app_id, name in apps]
        return out + self.certs.router_certificates()

    def _app_certificate(self, app_id: str, name: str) -> RouteCertificate:
        host = self.addresses.default_hostname(name)
        issued = self.issuer.issue([host])
        return RouteCertificate(f"default-{app_id}", (host,), issued.cert_pem, issued.key_pem)

    def publish_all(self) -> None:
        """The whole table, at start: the workers begin with it."""
        with self.store.session() as s:
            ids = list(s.scalars(select(App.id)))
        routes = [r for r in (self.app_route(i) for i in ids) if r is not None]
        self.sink.replace_table(routes, self.certificates(), self.default_certificate)

    # -- following changes ------------------------------------------------------------------
    def _on_app_changed(self, event: AppChanged) -> None:
        if event.renamed:  # the app's own certificate names the old hostname
            self._certs_dirty = True
        self.mark(event.app_id)

    def _on_certs(self, event: CertificatesChanged | AppCreated) -> None:
        self._certs_dirty = True
        self.mark(event.app_id)

    def _on_deleted(self, event: AppDeleted) -> None:
        self._dirty.discard(event.app_id)
        self.sink.remove_app(event.app_id)
        self._certs_dirty = True
        self._schedule()

    def mark(self, app_id: str) -> None:
        self._dirty.add(app_id)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        if self._certs_dirty:
            self._certs_dirty = False
            try:
                self.sink.set_certificates(self.certificates(), self.default_certificate)
            except Exception:
                log.exception("updating the router's certificates failed")
        for app_id in dirty:
            try:
                route = self.app_route(app_id)
                if route is None:
                    self.sink.remove_app(app_id)
                else:
                    self.sink.upsert_app(route)
            except Exception:
                log.exception("updating the route of %s failed", app_id)
