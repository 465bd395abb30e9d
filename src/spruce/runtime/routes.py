"""Feeds the router its table: apps, hostnames, web dynos, features, certificates.

The table is rebuilt per app whenever services or the dyno manager change something
about it; the router workers get each app as an upsert (or a removal).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

from spruce.certs.ca import InternalCA
from spruce.dynos import DynoManager
from spruce.router.supervisor import RouterSupervisor
from spruce.services import Services
from spruce.services.errors import NotFound

log = logging.getLogger(__name__)
ROUTER_FEATURES = {
    "http-session-affinity",
    "preboot",
    "http-disable-keepalive-to-dyno",
    "http-disable-http2",
    "http-end-to-end-continue",
}


class RouteFeed:
    def __init__(
        self,
        services: Services,
        manager: DynoManager,
        supervisor: RouterSupervisor,
        domain: str,
        ca: InternalCA,
        home: Path,
    ) -> None:
        self.services = services
        self.manager = manager
        self.supervisor = supervisor
        self.domain = domain
        self.ca = ca
        self.certs_dir = Path(home) / "certs" / "apps"
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._certs_dirty = False
        for kind in ("app_created", "app_changed", "release", "formation", "domains", "certs"):
            services.events.subscribe(kind, self._on_event)
        services.events.subscribe("app_deleted", self._on_deleted)

    def default_hostname(self, app_name: str) -> str:
        return f"{app_name}.{self.domain}"

    # -- the table -------------------------------------------------------------------
    def app_entry(self, app_id: str) -> dict[str, Any] | None:
        try:
            app = self.services.apps.get_internal(app_id)
        except NotFound:
            return None
        release = self.services.releases.current(app_id)
        config = dict(release.config or {}) if release else {}
        formation = {f.type: f for f in self.services.formation.list(app_id)}
        web = formation.get("web")
        dynos = []
        up = {e.dyno_name for e in self.manager.web_endpoints(app_id)}
        sleeping = False
        for d in self.manager.dynos(app_id):
            if d.type != "web" or d.name.startswith("run.") or d.name.startswith("release."):
                continue
            state = d.state
            if state == "idle":
                sleeping = True
                state = "down"
            elif state == "up" and d.name not in up:
                state = "down"  # retiring after a preboot switch, or stopping
            if state not in ("up", "starting", "crashed", "down"):
                state = "down"
            dynos.append({"name": d.name, "host": d.host, "port": d.port or 0, "state": state})
        hostnames = [self.default_hostname(app.name)] + [
            d.hostname for d in self.services.domains.list(app_id)
        ]
        return {
            "id": app.id,
            "name": app.name,
            "hostnames": hostnames,
            "maintenance": app.maintenance,
            "released": bool(release and release.slug_id),
            "features": sorted(self.services.features.enabled(app_id) & ROUTER_FEATURES),
            "maintenance_page_url": config.get("MAINTENANCE_PAGE_URL") or None,
            "error_page_url": config.get("ERROR_PAGE_URL") or None,
            "web_quantity": web.quantity if web else 0,
            "sleeping": sleeping,
            "eco_quota_exhausted": False,
            "dynos": dynos,
        }

    def refresh(self, app_id: str) -> None:
        entry = self.app_entry(app_id)
        if entry is None:
            self.supervisor.remove_app(app_id)
        else:
            self.supervisor.upsert_app(entry)

    def snapshot(self) -> dict[str, Any]:
        apps = {}
        for app in self.services.apps.all():
            entry = self.app_entry(app.id)
            if entry is not None:
                apps[app.id] = entry
        certs, default = self.certificates()
        return {
            "affinity_secret": self._affinity_secret(),
            "router_name": "spruce",
            "apps": apps,
            "certificates": certs,
            "default_certificate": default,
        }

    def _affinity_secret(self) -> str:
        path = self.certs_dir.parent / "affinity.secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    # -- certificates ---------------------------------------------------------------------
    def app_certificate(self, app_id: str, app_name: str) -> dict[str, Any]:
        """The internal CA's certificate for <app>.<domain> (OpenSSL refuses *.localhost)."""
        host = self.default_hostname(app_name)
        cert_path = self.certs_dir / f"{app_id}.pem"
        key_path = self.certs_dir / f"{app_id}.key"
        name_file = self.certs_dir / f"{app_id}.name"
        current = name_file.read_text() if name_file.exists() else ""
        if not cert_path.exists() or current != host:  # new app, or renamed
            self.ca.issue_to_files(cert_path, key_path, [host])
            name_file.write_text(host)
        return {
            "id": f"default-{app_id}",
            "hostnames": [host],
            "cert_pem": cert_path.read_text(),
            "key_pem": key_path.read_text(),
        }

    def certificates(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        certs = [self.app_certificate(a.id, a.name) for a in self.services.apps.all()]
        certs += self.services.certs.router_certificates()
        default_cert = self.certs_dir.parent / "local.pem"
        default_key = self.certs_dir.parent / "local.key"
        default = None
        if default_cert.exists():
            default = {
                "id": "default",
                "hostnames": ["localhost"],
                "cert_pem": default_cert.read_text(),
                "key_pem": default_key.read_text(),
            }
        return certs, default

    def refresh_certificates(self) -> None:
        certs, default = self.certificates()
        self.supervisor.set_certificates(certs, default)

    # -- events --------------------------------------------------------------------------
    def _on_event(self, kind: str, app_id: str | None = None, **payload: Any) -> None:
        # Certificates change only with a new or renamed app or an SNI endpoint change, not
        # with every maintenance or feature toggle.
        if kind in ("app_created", "certs") or payload.get("renamed"):
            self._certs_dirty = True
        if app_id:
            self.mark(app_id)

    def _on_deleted(self, kind: str, app_id: str, **_: Any) -> None:
        self.supervisor.remove_app(app_id)
        for suffix in ("pem", "key", "name"):
            (self.certs_dir / f"{app_id}.{suffix}").unlink(missing_ok=True)
        self._certs_dirty = True
        self._schedule()

    def mark(self, app_id: str) -> None:
        """Coalesce: many changes in one loop turn make one upsert per app."""
        self._dirty.add(app_id)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        if self._certs_dirty:
            self._certs_dirty = False
            try:
                self.refresh_certificates()
            except Exception:
                log.exception("updating the router's certificates failed")
        for app_id in dirty:
            try:
                self.refresh(app_id)
            except Exception:
                log.exception("updating the route of %s failed", app_id)

    def on_activity(self, counts: dict[str, int]) -> None:
        for app_id in counts:
            self.manager.note_request(app_id)

    def on_wake(self, app_id: str) -> None:
        self.manager.wake(app_id)
