"""Custom domains (and wildcard domains) routed to an app, and the app's own hostname."""

from __future__ import annotations

import builtins
import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Domain, SniEndpoint

from .errors import InvalidParams, NotFound
from .events import ApiActivity, DomainsChanged, EventBus
from .settings import PlatformAddresses
from .views import DomainView, Ref, UserView

LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^(\*\.)?({LABEL}\.)+{LABEL}$")
MAX_DOMAINS = 1000  # Heroku's per-app limit


class Domains:
    def __init__(self, store: Store, events: EventBus, addresses: PlatformAddresses) -> None:
        self.store = store
        self.events = events
        self.addresses = addresses

    # -- views ---------------------------------------------------------------------------
    def _default(self, app: App) -> DomainView:
        """The app's own hostname, listed as Heroku lists <app>.herokuapp.com (kind heroku)."""
        return DomainView(
            id=str(uuid.uuid5(uuid.NAMESPACE_DNS, app.id)),
            app=Ref(app.id, app.name),
            hostname=self.addresses.default_hostname(app.name),
            kind="heroku",
            cname=None,
            status="succeeded",
            acm_status=None,
            acm_status_reason=None,
            sni_endpoint=None,
            created_at=app.created_at,
            updated_at=app.updated_at,
        )

    @staticmethod
    def _view(d: Domain, app: Ref, sni: Ref | None) -> DomainView:
        return DomainView(
            id=d.id,
            app=app,
            hostname=d.hostname,
            kind=d.kind,
            cname=d.cname,
            status=d.status,
            acm_status=d.acm_status,
            acm_status_reason=d.acm_status_reason,
            sni_endpoint=sni,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )

    @staticmethod
    def _app(s: Session, app_id: str) -> App:
        app = s.get(App, app_id)
        if app is None:
            raise NotFound("Couldn't find that app.")
        return app

    def _custom(self, s: Session, app: App) -> builtins.list[DomainView]:
        ref = Ref(app.id, app.name)
        rows = s.execute(
            select(Domain, SniEndpoint.name)
            .outerjoin(SniEndpoint, SniEndpoint.id == Domain.sni_endpoint_id)
            .where(Domain.app_id == app.id)
            .order_by(Domain.created_at)
        )
        return [
            self._view(d, ref, Ref(d.sni_endpoint_id, sni) if d.sni_endpoint_id and sni else None)
            for d, sni in rows
        ]

    def list(self, app_id: str, with_default: bool = True) -> list[DomainView]:
        """The app's domains: its own hostname first (with_default), then custom ones."""
        with self.store.session() as s:
            app = self._app(s, app_id)
            return ([self._default(app)] if with_default else []) + self._custom(s, app)

    def hostnames(self, app_id: str) -> builtins.list[str]:
        with self.store.session() as s:
            app = self._app(s, app_id)
            custom = s.scalars(select(Domain.hostname).where(Domain.app_id == app_id))
            return [self.addresses.default_hostname(app.name), *custom]

    def get(self, app_id: str, identity: str) -> DomainView:
        ident = identity.strip().lower().rstrip(".")
        for d in self.list(app_id):
            if ident in (d.id, d.hostname):
                return d
        raise NotFound(f"Couldn't find that domain ({identity}).")

    def _custom_row(self, s: Session, app_id: str, identity: str) -> Domain:
        ident = identity.strip().lower().rstrip(".")
        row = s.scalar(
            select(Domain).where(
                Domain.app_id == app_id, (Domain.id == ident) | (Domain.hostname == ident)
            )
        )
        if row is None:
            raise NotFound(f"Couldn't find that domain ({identity}).")
        return row

    @staticmethod
    def _check_sni(s: Session, app_id: str, sni_endpoint: object) -> str | None:
        if sni_endpoint in (None, ""):
            return None
        if not isinstance(sni_endpoint, str):
            raise InvalidParams("sni_endpoint must be an SNI endpoint id or name.")
        for e in s.scalars(select(SniEndpoint).where(SniEndpoint.app_id == app_id)):
            if sni_endpoint in (e.id, e.name):
                return e.id
        raise NotFound(f"Couldn't find that SNI endpoint ({sni_endpoint}).")

    # -- changes ---------------------------------------------------------------------------
    def add(
        self, actor: UserView, app_id: str, hostname: object, sni_endpoint: object = None
    ) -> DomainView:
        if not isinstance(hostname, str) or not hostname.strip():
            raise InvalidParams("hostname is required.")
        host = hostname.strip().lower().rstrip(".")
        if len(host) > 253 or not HOSTNAME_RE.match(host):
            raise InvalidParams(
                f"{hostname} is not a valid hostname (wildcards only as the first label, "
                "like *.example.com)."
            )
        platform = self.addresses.app_domain
        if host == platform or host.endswith("." + platform):
            raise InvalidParams(
                f"{host} is under the platform's own domain {platform}; apps already answer "
                f"at <app>.{platform}."
            )
        with self.store.session() as s:
            app = self._app(s, app_id)
            sni_id = self._check_sni(s, app_id, sni_endpoint)
            if s.scalar(select(Domain.id).where(Domain.hostname == host)):
                raise InvalidParams(f"{host} is already in use by an app.")
            count = s.scalar(select(func.count(Domain.id)).where(Domain.app_id == app_id)) or 0
            if count >= MAX_DOMAINS:
                raise InvalidParams(f"An app can have at most {MAX_DOMAINS} custom domains.")
            domain = Domain(
                app_id=app_id,
                hostname=host,
                kind="custom",
                cname=self.addresses.default_hostname(app.name),
                sni_endpoint_id=sni_id,
                status="succeeded",
            )
            s.add(domain)
            s.flush()
            view = next(d for d in self._custom(s, app) if d.id == domain.id)
        self.events.publish(DomainsChanged(app_id))
        self.events.publish(ApiActivity(app_id, f"Add {host} domain by user {actor.email}"))
        return view

    def update(
        self, actor: UserView, app_id: str, identity: str, sni_endpoint: object
    ) -> DomainView:
        with self.store.session() as s:
            app = self._app(s, app_id)
            row = self._custom_row(s, app_id, identity)
            row.sni_endpoint_id = self._check_sni(s, app_id, sni_endpoint)
            s.flush()
            view = next(d for d in self._custom(s, app) if d.id == row.id)
        self.events.publish(DomainsChanged(app_id))
        return view

    def remove(self, actor: UserView, app_id: str, identity: str) -> DomainView:
        with self.store.session() as s:
            app = self._app(s, app_id)
            row = self._custom_row(s, app_id, identity)
            view = next(d for d in self._custom(s, app) if d.id == row.id)
            s.delete(row)
        self.events.publish(DomainsChanged(app_id))
        self.events.publish(
            ApiActivity(app_id, f"Remove {view.hostname} domain by user {actor.email}")
        )
        return view
