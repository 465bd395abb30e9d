"""The router supervisor as services' RouteSink: typed routes in, the workers' table out."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from spruce.services.model import AppRoute, RouteCertificate

from .supervisor import RouterSupervisor

ROUTER_NAME = "spruce"


def route_entry(route: AppRoute) -> dict[str, Any]:
    entry = asdict(route)
    entry["hostnames"] = list(route.hostnames)
    entry["features"] = list(route.features)
    entry["dynos"] = [asdict(d) for d in route.dynos]
    entry["acme_challenges"] = dict(route.acme_challenges)
    return entry


def certificate_entry(cert: RouteCertificate) -> dict[str, Any]:
    return {
        "id": cert.id,
        "hostnames": list(cert.hostnames),
        "cert_pem": cert.cert_pem,
        "key_pem": cert.key_pem,
    }


def affinity_secret(path: Path) -> str:
    """The key of session affinity cookies: made once, kept (0600) across restarts."""
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class SupervisorSink:
    def __init__(self, supervisor: RouterSupervisor, affinity_secret: str) -> None:
        self.supervisor = supervisor
        self.affinity_secret = affinity_secret

    def replace_table(
        self,
        apps: Sequence[AppRoute],
        certificates: Mapping[str, Sequence[RouteCertificate]],
        default: RouteCertificate | None,
    ) -> None:
        self.supervisor.replace_table(
            {
                "affinity_secret": self.affinity_secret,
                "router_name": ROUTER_NAME,
                "apps": {a.id: route_entry(a) for a in apps},
                "certificates": [
                    dict(certificate_entry(c), app_id=app_id)
                    for app_id, certs in certificates.items()
                    for c in certs
                ],
                "default_certificate": certificate_entry(default) if default else None,
            }
        )

    def upsert_app(self, route: AppRoute) -> None:
        self.supervisor.upsert_app(route_entry(route))

    def remove_app(self, app_id: str) -> None:
        self.supervisor.remove_app(app_id)

    def set_app_certificates(self, app_id: str, certificates: Sequence[RouteCertificate]) -> None:
        self.supervisor.set_app_certificates(app_id, [certificate_entry(c) for c in certificates])
