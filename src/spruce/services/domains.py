"""Custom domains (and wildcard domains) routed to an app."""

from __future__ import annotations

import re

from sqlalchemy import select

from spruce.store.db import Store
from spruce.store.models import Domain, SniEndpoint, User

from .errors import InvalidParams, NotFound
from .events import EventBus

LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^(\*\.)?({LABEL}\.)+{LABEL}$")
MAX_DOMAINS = 1000  # Heroku's per-app limit


class Domains:
    def __init__(self, store: Store, events: EventBus, app_domain: str = "localhost") -> None:
        self.store = store
        self.events = events
        self.app_domain = app_domain

    def list(self, app_id: str) -> list[Domain]:
        with self.store.session() as s:
            return list(
                s.scalars(select(Domain).where(Domain.app_id == app_id).order_by(Domain.created_at))
            )

    def get(self, app_id: str, identity: str) -> Domain:
        ident = identity.strip().lower().rstrip(".")
        for d in self.list(app_id):
            if ident in (d.id, d.hostname):
                return d
        raise NotFound(f"Couldn't find that domain ({identity}).")

    def _check_sni(self, app_id: str, sni_endpoint: object) -> str | None:
        if sni_endpoint in (None, ""):
            return None
        if not isinstance(sni_endpoint, str):
            raise InvalidParams("sni_endpoint must be an SNI endpoint id or name.")
        with self.store.session() as s:
            for e in s.scalars(select(SniEndpoint).where(SniEndpoint.app_id == app_id)):
                if sni_endpoint in (e.id, e.name):
                    return e.id
        raise NotFound(f"Couldn't find that SNI endpoint ({sni_endpoint}).")

    def add(
        self, actor: User, app_id: str, app_name: str, hostname: object, sni_endpoint: object = None
    ) -> Domain:
        if not isinstance(hostname, str) or not hostname.strip():
            raise InvalidParams("hostname is required.")
        host = hostname.strip().lower().rstrip(".")
        if len(host) > 253 or not HOSTNAME_RE.match(host):
            raise InvalidParams(
                f"{hostname} is not a valid hostname (wildcards only as the first label, like *.example.com)."
            )
        if host == self.app_domain or host.endswith("." + self.app_domain):
            raise InvalidParams(
                f"{host} is under the platform's own domain {self.app_domain}; apps already answer at <app>.{self.app_domain}."
            )
        sni_id = self._check_sni(app_id, sni_endpoint)
        with self.store.session() as s:
            if s.scalar(select(Domain.id).where(Domain.hostname == host)):
                raise InvalidParams(f"{host} is already in use by an app.")
            if (
                len(list(s.scalars(select(Domain.id).where(Domain.app_id == app_id))))
                >= MAX_DOMAINS
            ):
                raise InvalidParams(f"An app can have at most {MAX_DOMAINS} custom domains.")
            domain = Domain(
                app_id=app_id,
                hostname=host,
                kind="custom",
                cname=f"{app_name}.{self.app_domain}",
                sni_endpoint_id=sni_id,
                status="succeeded",
            )
            s.add(domain)
        self.events.publish("domains", app_id=app_id)
        self.events.publish(
            "api_log", app_id=app_id, message=f"Add {host} domain by user {actor.email}"
        )
        return domain

    def update(self, actor: User, app_id: str, identity: str, sni_endpoint: object) -> Domain:
        d = self.get(app_id, identity)
        sni_id = self._check_sni(app_id, sni_endpoint)
        with self.store.session() as s:
            row = s.get(Domain, d.id)
            assert row is not None
            row.sni_endpoint_id = sni_id
            d = row
        self.events.publish("domains", app_id=app_id)
        return d

    def remove(self, actor: User, app_id: str, identity: str) -> Domain:
        d = self.get(app_id, identity)
        with self.store.session() as s:
            row = s.get(Domain, d.id)
            if row is not None:
                s.delete(row)
        self.events.publish("domains", app_id=app_id)
        self.events.publish(
            "api_log", app_id=app_id, message=f"Remove {d.hostname} domain by user {actor.email}"
        )
        return d
