"""SNI endpoints: certificates users upload for their custom domains."""

from __future__ import annotations

import builtins
import datetime as dt
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Domain, SniEndpoint

from .errors import InvalidParams, NotFound
from .events import CertificatesChanged, EventBus
from .model import RouteCertificate
from .views import CertInfo, Ref, SniEndpointView, UserView

_NAMES = (
    "ankylosaurus",
    "brachiosaurus",
    "diplodocus",
    "iguanodon",
    "megalosaurus",
    "parasaurolophus",
    "pterodactyl",
    "stegosaurus",
    "triceratops",
    "velociraptor",
)


def inspect_chain(chain_pem: str, key_pem: str, check_expiry: bool = True) -> CertInfo:
    """Parse and check an uploaded certificate chain and key (the key must match)."""
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        raise InvalidParams("The certificate is not a PEM certificate chain.") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), None)
    except (ValueError, TypeError):
        raise InvalidParams("The private key is not an unencrypted PEM private key.") from None
    leaf = certs[0]
    pub = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if (
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != pub
    ):
        raise InvalidParams("The private key does not match the certificate.")
    try:
        ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = ext.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    if not sans:
        cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        sans = [str(cns[0].value)] if cns else []
    if not sans:
        raise InvalidParams("The certificate names no domain (no subjectAltName or common name).")
    if check_expiry and leaf.not_valid_after_utc < dt.datetime.now(dt.UTC):
        raise InvalidParams("The certificate has expired.")
    return CertInfo(
        leaf.subject.rfc4514_string(),
        leaf.issuer.rfc4514_string(),
        tuple(s.lower() for s in sans),
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
        leaf.issuer == leaf.subject,
    )


class Certs:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    def _views(self, s: Session, app_id: str) -> builtins.list[SniEndpointView]:
        app = s.get(App, app_id)
        if app is None:
            raise NotFound("Couldn't find that app.")
        ref = Ref(app.id, app.name)
        domains: dict[str, builtins.list[str]] = {}
        for d in s.scalars(select(Domain).where(Domain.app_id == app_id)):
            if d.sni_endpoint_id:
                domains.setdefault(d.sni_endpoint_id, []).append(d.id)
        out = []
        rows = s.scalars(
            select(SniEndpoint).where(SniEndpoint.app_id == app_id).order_by(SniEndpoint.created_at)
        )
        for e in rows:
            out.append(
                SniEndpointView(
                    id=e.id,
                    app=ref,
                    name=e.name,
                    certificate_chain=e.certificate_chain,
                    domain_ids=tuple(domains.get(e.id, ())),
                    cert=inspect_chain(e.certificate_chain, e.private_key, check_expiry=False),
                    acm=e.acm,
                    created_at=e.created_at,
                    updated_at=e.updated_at,
                )
            )
        return out

    def list(self, app_id: str) -> builtins.list[SniEndpointView]:
        with self.store.session() as s:
            return self._views(s, app_id)

    def get(self, app_id: str, identity: str) -> SniEndpointView:
        for e in self.list(app_id):
            if identity in (e.id, e.name):
                return e
        raise NotFound(f"Couldn't find that SNI endpoint ({identity}).")

    def add(self, actor: UserView, app_id: str, chain: Any, key: Any) -> SniEndpointView:
        if not isinstance(chain, str) or not isinstance(key, str):
            raise InvalidParams("certificate_chain and private_key are required (PEM text).")
        inspect_chain(chain, key)
        with self.store.session() as s:
            taken = set(s.scalars(select(SniEndpoint.name)))
            name = f"{secrets.choice(_NAMES)}-{secrets.randbelow(90000) + 10000}"
            while name in taken:
                name = f"{secrets.choice(_NAMES)}-{secrets.randbelow(90000) + 10000}"
            endpoint = SniEndpoint(
                app_id=app_id, name=name, certificate_chain=chain, private_key=key
            )
            s.add(endpoint)
            s.flush()
            view = next(v for v in self._views(s, app_id) if v.id == endpoint.id)
        self.events.publish(CertificatesChanged(app_id))
        return view

    def update(
        self, actor: UserView, app_id: str, identity: str, chain: Any, key: Any
    ) -> SniEndpointView:
        endpoint = self.get(app_id, identity)
        if not isinstance(chain, str) or not isinstance(key, str):
            raise InvalidParams("certificate_chain and private_key are required (PEM text).")
        inspect_chain(chain, key)
        with self.store.session() as s:
            row = s.get(SniEndpoint, endpoint.id)
            if row is None:
                raise NotFound(f"Couldn't find that SNI endpoint ({identity}).")
            row.certificate_chain, row.private_key = chain, key
            s.flush()
            view = next(v for v in self._views(s, app_id) if v.id == endpoint.id)
        self.events.publish(CertificatesChanged(app_id))
        return view

    def remove(self, actor: UserView, app_id: str, identity: str) -> SniEndpointView:
        endpoint = self.get(app_id, identity)
        with self.store.session() as s:
            for d in s.scalars(select(Domain).where(Domain.sni_endpoint_id == endpoint.id)):
                d.sni_endpoint_id = None
            row = s.get(SniEndpoint, endpoint.id)
            if row is not None:
                s.delete(row)
        self.events.publish(CertificatesChanged(app_id))
        return endpoint

    def router_certificates(
        self, app_ids: builtins.list[str] | None = None
    ) -> builtins.list[tuple[str, RouteCertificate]]:
        """Uploaded certificates (of these apps, or all) by app, for the router's SNI choice."""
        out = []
        q = select(SniEndpoint)
        if app_ids is not None:
            q = q.where(SniEndpoint.app_id.in_(app_ids))
        with self.store.session() as s:
            for e in s.scalars(q):
                try:
                    info = inspect_chain(e.certificate_chain, e.private_key)
                except InvalidParams:
                    continue
                out.append(
                    (
                        e.app_id,
                        RouteCertificate(
                            e.id, info.cert_domains, e.certificate_chain, e.private_key
                        ),
                    )
                )
        return out
