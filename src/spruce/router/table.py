"""The route table: apps by hostname (exact, then wildcard), certificates by SNI name.

The control plane builds it as JSON-serialisable dicts (it crosses a process boundary):

    snapshot = {"affinity_secret": hex, "router_name": "spruce", "apps": {app_id: APP},
                "certificates": [CERT], "default_certificate": CERT | None}

A CERT may carry the `app_id` it belongs to: the control plane then replaces one app's
certificates at a time (`set_app_certificates`) instead of sending them all.

See docs/router.md for APP and CERT.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DynoState(StrEnum):
    """A web dyno's state as the route table carries it."""

    UP = "up"
    STARTING = "starting"
    CRASHED = "crashed"
    DOWN = "down"


class Feature(StrEnum):
    """The app features (Heroku labs flags) the router acts on."""

    SESSION_AFFINITY = "http-session-affinity"
    DISABLE_KEEPALIVE_TO_DYNO = "http-disable-keepalive-to-dyno"
    DISABLE_HTTP2 = "http-disable-http2"
    END_TO_END_CONTINUE = "http-end-to-end-continue"
    TELEMETRY = "spruce-telemetry"
    """Not a labs flag: the app has a telemetry drain, so its exchanges become spans."""


class TableError(ValueError):
    """A route table entry the router cannot use."""


def normalise_host(host: str) -> str:
    """Host header or SNI name -> lower-case name without port or trailing dot."""
    h = host.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[: end + 1] if end > 0 else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


@dataclass(frozen=True, slots=True)
class Dyno:
    name: str
    host: str
    port: int
    state: DynoState
    key: tuple[str, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.host, self.port))


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _inbound(rules: Any) -> tuple[tuple[IPNetwork, bool], ...] | None:
    if rules is None:
        return None
    return tuple(
        (ipaddress.ip_network(str(src), strict=False), str(action) == "allow")
        for src, action in rules
    )


@dataclass(frozen=True)
class App:
    id: str
    name: str
    hostnames: tuple[str, ...]
    maintenance: bool = False
    released: bool = True
    features: frozenset[str] = frozenset()
    maintenance_page_url: str | None = None
    error_page_url: str | None = None
    web_quantity: int = 1
    sleeping: bool = False
    eco_quota_exhausted: bool = False
    dynos: tuple[Dyno, ...] = ()
    up: tuple[Dyno, ...] = field(default=(), compare=False)
    # nothing for the HTTP/1.1 fast lane to decide beyond dyno choice (no features, no H code)
    plain: bool = field(default=False, compare=False)
    # HTTP-01 tokens of the app's ACM orders: token -> key authorization (acme_challenge.py)
    acme_challenges: Mapping[str, str] = field(default_factory=dict, compare=False)
    # A space's trusted IP ranges: (network, allow) in order, first match decides; None for
    # apps outside a space (every source is welcome).
    inbound: tuple[tuple[IPNetwork, bool], ...] | None = None

    def trusts(self, client_ip: str) -> bool:
        """Whether the space's inbound rules let `client_ip` in."""
        rules = self.inbound
        if rules is None:
            return True
        try:
            addr = ipaddress.ip_address(client_ip.split("%")[0])
        except ValueError:
            return False
        anywhere = False  # IPv6 clients other than ::1: trusted only under 0.0.0.0/0
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            elif addr.is_loopback:
                addr = ipaddress.IPv4Address("127.0.0.1")
            else:
                anywhere = True
        for net, allow in rules:
            if anywhere and net.prefixlen == 0:
                return allow
            if addr.version == net.version and addr in net:
                return allow
        return False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> App:
        try:
            app_id = str(d["id"])
            dynos = tuple(_dyno(app_id, x) for x in d.get("dynos", []))
            features = frozenset(d.get("features", []))
            maintenance = bool(d.get("maintenance", False))
            released = bool(d.get("released", True))
            web_quantity = int(d.get("web_quantity", len(dynos)))
            exhausted = bool(d.get("eco_quota_exhausted", False))
            up = tuple(x for x in dynos if x.state is DynoState.UP)
            return cls(
                id=app_id,
                name=str(d.get("name", app_id)),
                hostnames=tuple(normalise_host(h) for h in d.get("hostnames", [])),
                maintenance=maintenance,
                released=released,
                features=features,
                maintenance_page_url=d.get("maintenance_page_url"),
                error_page_url=d.get("error_page_url"),
                web_quantity=web_quantity,
                sleeping=bool(d.get("sleeping", False)),
                eco_quota_exhausted=exhausted,
                dynos=dynos,
                up=up,
                acme_challenges={
                    str(k): str(v) for k, v in (d.get("acme_challenges") or {}).items()
                },
                inbound=_inbound(d.get("inbound_rules")),
                plain=bool(
                    up
                    and d.get("inbound_rules") is None
                    and not features
                    and not maintenance
                    and released
                    and not exhausted
                    and web_quantity > 0
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, TableError):
                raise
            raise TableError(f"invalid app entry: {e!r}") from None

    def has(self, feature: Feature) -> bool:
        return feature in self.features


def _dyno(app_id: str, x: dict[str, Any]) -> Dyno:
    state = str(x.get("state", DynoState.UP))
    try:
        known = DynoState(state)
    except ValueError:
        raise TableError(
            f"app {app_id}: dyno {x.get('name')} has unknown state {state!r}"
        ) from None
    return Dyno(str(x["name"]), str(x["host"]), int(x["port"]), known)


@dataclass(frozen=True)
class Certificate:
    id: str
    hostnames: tuple[str, ...]
    cert_pem: str
    key_pem: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Certificate:
        try:
            return cls(
                str(d["id"]),
                tuple(normalise_host(h) for h in d.get("hostnames", [])),
                str(d["cert_pem"]),
                str(d["key_pem"]),
            )
        except KeyError as e:
            raise TableError(f"certificate entry lacks {e}") from None


def _wildcard_candidates(host: str) -> list[str]:
    """a.b.example.org -> ["*.b.example.org", "*.example.org", "*.org"]: most specific first."""
    labels = host.split(".")
    return ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]


class RouteTable:
    def __init__(self, snapshot: dict[str, Any] | None = None) -> None:
        snapshot = snapshot or {}
        self.router_name: str = str(snapshot.get("router_name", "spruce"))
        self.via_h1 = f"1.1 {self.router_name}".encode("latin-1")  # Via towards HTTP/1.1
        self.via_h2 = f"2.0 {self.router_name}"  # and towards HTTP/2 clients
        secret = snapshot.get("affinity_secret") or ""
        self.affinity_secret: bytes = bytes.fromhex(secret) if secret else b""
        self.apps: dict[str, App] = {}
        self._exact: dict[str, str] = {}
        self._wild: dict[str, str] = {}
        for app_id, raw in (snapshot.get("apps") or {}).items():
            raw = dict(raw)
            raw.setdefault("id", app_id)
            self.apps[str(app_id)] = App.from_dict(raw)
        for app in self.apps.values():
            self._index(app)
        self._raw: dict[bytes, tuple[App | None, str]] = {}
        self._certs_by_app: dict[str, list[Certificate]] = {}
        self._cert_names: dict[str, Certificate] = {}
        # For one app's change to touch only its own names: the apps naming each host, and
        # each app's place in `_certs_by_app` (the first app there naming a host wins).
        self._cert_holders: dict[str, set[str]] = {}
        self._cert_order: dict[str, int] = {}
        self._next_order = 0
        self.default_certificate: Certificate | None = None
        self.set_certificates(
            snapshot.get("certificates") or [], snapshot.get("default_certificate")
        )

    # Per app, not per table: an app's change touches its own hostnames only.
    def _index(self, app: App) -> None:
        for h in app.hostnames:
            (self._wild if h.startswith("*.") else self._exact)[h] = app.id

    def _unindex(self, app: App) -> None:
        for h in app.hostnames:
            index = self._wild if h.startswith("*.") else self._exact
            if index.get(h) == app.id:
                del index[h]

    def lookup_raw(self, host: bytes) -> tuple[App | None, str]:
        """(`lookup`, normalised name) for a Host header as sent, memoised per table version
        for the hot path."""
        raw = self._raw
        hit = raw.get(host)
        if hit is None:
            name = normalise_host(host.decode("latin-1"))
            hit = (self.lookup(name), name)
            if len(raw) >= 4096:  # bounded: clients choose the Host header
                raw.clear()
            raw[host] = hit
        return hit

    def upsert_app(self, raw: dict[str, Any]) -> App:
        app = App.from_dict(raw)
        old = self.apps.get(app.id)
        if old is not None:
            self._unindex(old)
        self.apps[app.id] = app
        self._index(app)
        self._raw = {}
        return app

    def remove_app(self, app_id: str) -> None:
        old = self.apps.pop(app_id, None)
        if old is not None:
            self._unindex(old)
        self._raw = {}

    @property
    def certificates(self) -> list[Certificate]:
        return [c for certs in self._certs_by_app.values() for c in certs]

    def set_certificates(self, certs: list[dict[str, Any]], default: dict[str, Any] | None) -> None:
        """Replace every certificate (grouped by their `app_id`, "" when they carry none)."""
        by_app: dict[str, list[Certificate]] = {}
        for c in certs:
            by_app.setdefault(str(c.get("app_id") or ""), []).append(Certificate.from_dict(c))
        self._certs_by_app = by_app
        self.default_certificate = Certificate.from_dict(default) if default else None
        self._index_certificates()

    def set_app_certificates(self, app_id: str, certs: list[dict[str, Any]]) -> list[str]:
        """Replace one app's certificates; the ids of those that changed or went. Only the
        names of this app's certificates are looked at again, not every app's."""
        old = self._certs_by_app.get(app_id, [])
        before = {c.id: c for c in old}
        after = [Certificate.from_dict(c) for c in certs]
        if after:
            if app_id not in self._certs_by_app:  # a new key goes last, as in the dict
                self._cert_order[app_id] = self._next_order
                self._next_order += 1
            self._certs_by_app[app_id] = after
        else:
            self._certs_by_app.pop(app_id, None)
            self._cert_order.pop(app_id, None)
        named = {h for c in after for h in c.hostnames}
        for h in {h for c in old for h in c.hostnames} | named:
            holders = self._cert_holders.setdefault(h, set())
            if h in named:
                holders.add(app_id)
            else:
                holders.discard(app_id)
            self._index_name(h)
        now = {c.id: c for c in after}
        return [i for i, c in before.items() if now.get(i) != c]

    def _index_name(self, host: str) -> None:
        """The certificate for `host`: the first one naming it in the first app (in
        `_certs_by_app`'s order) that has one."""
        holders = self._cert_holders.get(host)
        if not holders:
            self._cert_holders.pop(host, None)
            self._cert_names.pop(host, None)
            return
        first = min(holders, key=self._cert_order.__getitem__)
        self._cert_names[host] = next(c for c in self._certs_by_app[first] if host in c.hostnames)

    def _index_certificates(self) -> None:
        # One dict build (it keeps "first certificate naming a host wins" exact) so that a
        # TLS handshake looks its name up instead of scanning every certificate.
        names: dict[str, Certificate] = {}
        holders: dict[str, set[str]] = {}
        for app_id, certs in self._certs_by_app.items():
            for cert in certs:
                for h in cert.hostnames:
                    names.setdefault(h, cert)
                    holders.setdefault(h, set()).add(app_id)
        self._cert_names = names
        self._cert_holders = holders
        self._cert_order = {app_id: i for i, app_id in enumerate(self._certs_by_app)}
        self._next_order = len(self._cert_order)

    def lookup(self, host: str) -> App | None:
        h = normalise_host(host)
        app_id = self._exact.get(h)
        if app_id is None:
            for cand in _wildcard_candidates(h):
                app_id = self._wild.get(cand)
                if app_id is not None:
                    break
        return self.apps.get(app_id) if app_id is not None else None

    def certificate_for(self, server_name: str | None) -> Certificate | None:
        """Specific names beat wildcards (which cover one label, as in TLS)."""
        if server_name:
            name = normalise_host(server_name)
            cert = self._cert_names.get(name)
            if cert is None and "." in name:
                cert = self._cert_names.get("*." + name.split(".", 1)[1])
            if cert is not None:
                return cert
        return self.default_certificate


def cert_matches(cert: Certificate, name: str) -> bool:
    name = normalise_host(name)
    if name in cert.hostnames:
        return True
    return "." in name and "*." + name.split(".", 1)[1] in cert.hostnames
