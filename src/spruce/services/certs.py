"""SNI endpoints: certificates users upload for their custom domains, and ACM's.

ACM's certificates (`acm` true) are SNI endpoints too, one per certificate group of the app;
their private keys are sealed in the store, and only ACM changes or removes them.
"""

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
from .sealing import SealBroken, Sealer
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


ACM_MANAGED = (
    "This certificate is managed by Automatic Certificate Management; turn it off first with "
    "certs:auto:disable."
)


def _leaf(chain_pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificates(chain_pem.encode())[0]
    except ValueError:
        raise InvalidParams("The certificate is not a PEM certificate chain.") from None


def certificate_info(chain_pem: str, check_expiry: bool = False) -> CertInfo:
    """What an SNI endpoint shows of its certificate chain (the leaf's names and dates)."""
    leaf = _leaf(chain_pem)
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


def inspect_chain(chain_pem: str, key_pem: str, check_expiry: bool = True) -> CertInfo:
    """Parse and check an uploaded certificate chain and key (the key must match)."""
    leaf = _leaf(chain_pem)
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), None)
    except (ValueError, TypeError):
        raise InvalidParams("The private key is not an unencrypted PEM private key.") from None
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
    return certificate_info(chain_pem, check_expiry)


def _new_name(s: Session) -> str:
    taken = set(s.scalars(select(SniEndpoint.name)))
    name = f"{secrets.choice(_NAMES)}-{secrets.randbelow(90000) + 10000}"
    while name in taken:
        name = f"{secrets.choice(_NAMES)}-{secrets.randbelow(90000) + 10000}"
    return name


class Certs:
    def __init__(self, store: Store, events: EventBus, sealer: Sealer) -> None:
        self.store = store
        self.events = events
        self.sealer = sealer

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
                    cert=certificate_info(e.certificate_chain),
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
            endpoint = SniEndpoint(
                app_id=app_id, name=_new_name(s), certificate_chain=chain, private_key=key
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
        if endpoint.acm:
            raise InvalidParams(ACM_MANAGED)
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
        if endpoint.acm:
            raise InvalidParams(ACM_MANAGED)
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
        """Every usable certificate, uploaded or ACM's (of these apps, or all), by app, for
        the router's SNI choice (specific names beat wildcards there)."""
        out = []
        q = select(SniEndpoint)
        if app_ids is not None:
            q = q.where(SniEndpoint.app_id.in_(app_ids))
        with self.store.session() as s:
            for e in s.scalars(q):
                try:
                    key = self.sealer.open(e.private_key) if e.acm else e.private_key
                    info = certificate_info(e.certificate_chain, check_expiry=True)
                except (InvalidParams, SealBroken):
                    continue
                out.append(
                    (e.app_id, RouteCertificate(e.id, info.cert_domains, e.certificate_chain, key))
                )
        return out

    # -- ACM's certificates (services/acm.py) ---------------------------------------------
    def put_acm(self, app_id: str, group: str, chain: str, key: str) -> str:
        """Create or replace the app's ACM certificate of `group`; returns its endpoint id.

        Replaced in place (same id and name): the router swaps it on its next handshake."""
        with self.store.session() as s:
            row = s.scalar(
                select(SniEndpoint).where(
                    SniEndpoint.app_id == app_id,
                    SniEndpoint.acm.is_(True),
                    SniEndpoint.acm_group == group,
                )
            )
            if row is None:
                row = SniEndpoint(app_id=app_id, name=_new_name(s), acm=True, acm_group=group)
                s.add(row)
            row.certificate_chain, row.private_key = chain, self.sealer.seal(key)
            s.flush()
            endpoint_id = row.id
        self.events.publish(CertificatesChanged(app_id))
        return endpoint_id

    def acm_certificates(self, app_id: str) -> dict[str, tuple[str, CertInfo]]:
        """The app's ACM certificates by group: (endpoint id, what the certificate says)."""
        with self.store.session() as s:
            rows = s.scalars(
                select(SniEndpoint).where(SniEndpoint.app_id == app_id, SniEndpoint.acm.is_(True))
            )
            return {e.acm_group or "": (e.id, certificate_info(e.certificate_chain)) for e in rows}

    def remove_acm(self, app_id: str, groups: builtins.list[str] | None = None) -> int:
        """Remove the app's ACM certificates (of `groups`, or all); domains that named them
        name none. Returns how many went."""
        with self.store.session() as s:
            q = select(SniEndpoint).where(SniEndpoint.app_id == app_id, SniEndpoint.acm.is_(True))
            if groups is not None:
                q = q.where(SniEndpoint.acm_group.in_(groups))
            rows = list(s.scalars(q))
            ids = [e.id for e in rows]
            for d in s.scalars(select(Domain).where(Domain.sni_endpoint_id.in_(ids))):
                d.sni_endpoint_id = None
            for e in rows:
                s.delete(e)
        if rows:
            self.events.publish(CertificatesChanged(app_id))
        return len(rows)
