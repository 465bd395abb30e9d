"""Automated Certificate Management: the app's `acm` flag, and what ACM keeps of each app.

`acm` is false until `certs:auto:enable` (POST /apps/{app}/acm) and changes only through
these three calls: nothing else (not the formation, not the dyno size: Eco apps get ACM
too) touches it. While it is on, the scheduler (services/acm_scheduler.py) takes each custom
domain through its `acm_status` lifecycle (services/acm_lifecycle.py) and keeps one
certificate per certificate group as an SNI endpoint with `acm` true.

Everything ACM knows lives in the store, so a restart resumes where it stopped: domains'
statuses and retry times, the orders in progress (their records sealed: each holds a
private key), the account at each ACME directory (sealed), and the certificates (their keys
sealed, services/certs.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import AcmAccount, AcmOrder, App, Domain, utcnow

from .acm_lifecycle import (
    AcmStatus,
    AcmTransitionError,
    Certificate,
    DomainAcm,
    Event,
    Policy,
    Refreshed,
    apply,
)
from .acm_model import OrderRecord
from .apps import Apps
from .certs import Certs
from .errors import InvalidParams, NotFound
from .events import AcmChallengesChanged, AcmChanged, EventBus
from .sealing import SealBroken, Sealer
from .views import AppView, UserView

log = logging.getLogger(__name__)


_TOKENS = select(AcmOrder.app_id, AcmOrder.http01)
_TOKENS_OF = _TOKENS.where(AcmOrder.app_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class AcmDomain:
    hostname: str
    dns_target: str
    state: DomainAcm


@dataclass(frozen=True)
class AcmOrderState:
    reason: str
    record: OrderRecord


@dataclass(frozen=True)
class AcmApp:
    """What ACM keeps of one app, read at once for one pass of the scheduler."""

    app_id: str
    enabled: bool
    domains: dict[str, AcmDomain]
    """Custom domains by hostname."""
    certificates: dict[str, Certificate]
    """The app's ACM certificates, by certificate group."""
    orders: dict[str, AcmOrderState]
    """Orders in progress, by certificate group."""


def _state(d: Domain) -> DomainAcm:
    status: AcmStatus = d.acm_status  # type: ignore[assignment]
    return DomainAcm(
        status, d.acm_status_reason, d.acm_attempts or 0, d.acm_next_check_at, d.updated_at
    )


class Acm:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        apps: Apps,
        certs: Certs,
        sealer: Sealer,
        policy: Policy,
    ) -> None:
        self.store = store
        self.events = events
        self.apps = apps
        self.certs = certs
        self.sealer = sealer
        self.policy = policy

    # -- certs:auto:enable / disable / refresh ---------------------------------------------
    def enable(self, actor: UserView, app_id: str) -> AppView:
        """Turn ACM on: every custom domain starts again from `Waiting`."""
        with self.store.session() as s:
            app = self._app(s, app_id)
            if not app.acm:
                app.acm = True
                for d in s.scalars(select(Domain).where(Domain.app_id == app_id)):
                    self._put(d, DomainAcm(updated_at=utcnow()))
        self.events.publish(AcmChanged(app_id))
        return self.apps.get(actor, app_id)

    def disable(self, actor: UserView, app_id: str) -> AppView:
        """Turn ACM off: its certificates go (the CLI warns of it), statuses are cleared and
        the scheduler abandons the orders in progress (withdrawing their challenges)."""
        with self.store.session() as s:
            app = self._app(s, app_id)
            app.acm = False
            for d in s.scalars(select(Domain).where(Domain.app_id == app_id)):
                self._put(d, DomainAcm(updated_at=d.updated_at))
        self.certs.remove_acm(app_id)
        self.events.publish(AcmChanged(app_id))
        return self.apps.get(actor, app_id)

    def refresh(self, actor: UserView, app_id: str) -> AppView:
        """certs:auto:refresh: failed and failing domains start again, others are checked
        at once."""
        with self.store.session() as s:
            app = self._app(s, app_id)
            if not app.acm:
                raise InvalidParams(
                    f"Automatic Certificate Management is not enabled on {app.name}. "
                    "Enable it with certs:auto:enable."
                )
            hostnames = self._hostnames(s, app_id)
            self._apply_rows(s, app_id, dict.fromkeys(hostnames, Refreshed()))
        self.events.publish(AcmChanged(app_id))
        return self.apps.get(actor, app_id)

    # -- what the scheduler reads and writes -------------------------------------------------
    def enabled_app_ids(self) -> list[str]:
        with self.store.session() as s:
            return list(s.scalars(select(App.id).where(App.acm.is_(True)).order_by(App.id)))

    def apps_with_orders(self) -> list[str]:
        with self.store.session() as s:
            return sorted(set(s.scalars(select(AcmOrder.app_id))))

    def snapshot(self, app_id: str) -> AcmApp | None:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                return None
            domains = {
                d.hostname: AcmDomain(d.hostname, d.cname or "", _state(d))
                for d in s.scalars(
                    select(Domain).where(Domain.app_id == app_id, Domain.kind == "custom")
                )
            }
            rows = list(s.scalars(select(AcmOrder).where(AcmOrder.app_id == app_id)))
            enabled = app.acm
        orders: dict[str, AcmOrderState] = {}
        for row in rows:
            try:
                record = OrderRecord.from_json(json.loads(self.sealer.open(row.sealed)))
            except (SealBroken, ValueError) as e:
                log.warning("ACM: dropping an unreadable order of app %s: %s", app_id, e)
                self.drop_order(app_id, row.group)
                continue
            orders[row.group] = AcmOrderState(row.reason, record)
        certificates = {
            group: Certificate(frozenset(info.cert_domains), info.expires_at, info.starts_at)
            for group, (_, info) in self.certs.acm_certificates(app_id).items()
        }
        return AcmApp(app_id, enabled, domains, certificates, orders)

    def record_events(
        self, app_id: str, events: Mapping[str, Event], now: dt.datetime
    ) -> dict[str, DomainAcm]:
        """Apply lifecycle events to the app's domains (those still there); their new states."""
        if not events:
            return {}
        with self.store.session() as s:
            return self._apply_rows(s, app_id, events, now)

    def save_order(self, app_id: str, group: str, reason: str, record: OrderRecord) -> None:
        sealed = self.sealer.seal(json.dumps(record.to_json()))
        tokens = record.http01
        with self.store.session() as s:
            row = s.get(AcmOrder, (app_id, group))
            if row is None:
                if s.get(App, app_id) is None:
                    return  # the app went meanwhile
                row = AcmOrder(app_id=app_id, group=group, reason=reason, sealed=sealed)
                s.add(row)
                changed = bool(tokens)
            else:
                changed = dict(row.http01 or {}) != tokens
                row.reason, row.sealed = reason, sealed
            row.http01 = tokens
        if changed:
            self.events.publish(AcmChallengesChanged(app_id))

    def drop_order(self, app_id: str, group: str) -> None:
        with self.store.session() as s:
            row = s.get(AcmOrder, (app_id, group))
            had_tokens = bool(row and row.http01)
            s.execute(delete(AcmOrder).where(AcmOrder.app_id == app_id, AcmOrder.group == group))
        if had_tokens:
            self.events.publish(AcmChallengesChanged(app_id))

    def install(self, app_id: str, group: str, record: OrderRecord) -> None:
        """A valid order's certificate becomes the group's SNI endpoint (replaced in place:
        the router serves the new one from its next handshake)."""
        assert record.certificate_pem is not None
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None or not app.acm:
                return  # turned off while the order's last step ran
        endpoint_id = self.certs.put_acm(app_id, group, record.certificate_pem, record.key_pem)
        names = set(record.hostnames)
        with self.store.session() as s:
            for d in s.scalars(select(Domain).where(Domain.app_id == app_id)):
                if d.hostname in names:
                    d.sni_endpoint_id = endpoint_id
                elif d.sni_endpoint_id == endpoint_id:
                    d.sni_endpoint_id = None

    def remove_certificates(self, app_id: str, groups: list[str]) -> None:
        if groups:
            self.certs.remove_acm(app_id, groups)

    def http01_tokens(
        self, app_ids: Collection[str] | None = None
    ) -> dict[str, tuple[tuple[str, str], ...]]:
        """The HTTP-01 answers of the orders in progress of these apps (None: all), by app,
        for the router's table (one query)."""
        out: dict[str, set[tuple[str, str]]] = {}
        with self.store.reading() as c:
            rows = (
                c.execute(_TOKENS)
                if app_ids is None
                else c.execute(_TOKENS_OF, {"ids": list(app_ids)})
            )
            for app_id, tokens in rows:
                out.setdefault(app_id, set()).update((str(k), str(v)) for k, v in tokens.items())
        return {app_id: tuple(sorted(pairs)) for app_id, pairs in out.items()}

    def account(self, directory: str) -> dict[str, object] | None:
        with self.store.session() as s:
            row = s.get(AcmAccount, directory)
            sealed = row.sealed if row else None
        if sealed is None:
            return None
        try:
            data = json.loads(self.sealer.open(sealed))
        except (SealBroken, ValueError) as e:
            log.warning(
                "ACM: the stored account for %s is unreadable (%s); a new one", directory, e
            )
            return None
        return data if isinstance(data, dict) else None

    def save_account(self, directory: str, data: dict[str, object]) -> None:
        sealed = self.sealer.seal(json.dumps(data))
        with self.store.session() as s:
            row = s.get(AcmAccount, directory)
            if row is None:
                s.add(AcmAccount(directory_url=directory, sealed=sealed))
            else:
                row.sealed = sealed

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _app(s: Session, app_id: str) -> App:
        app = s.get(App, app_id)
        if app is None:
            raise NotFound("Couldn't find that app.")
        return app

    @staticmethod
    def _hostnames(s: Session, app_id: str) -> list[str]:
        return list(
            s.scalars(
                select(Domain.hostname).where(Domain.app_id == app_id, Domain.kind == "custom")
            )
        )

    def _apply_rows(
        self, s: Session, app_id: str, events: Mapping[str, Event], now: dt.datetime | None = None
    ) -> dict[str, DomainAcm]:
        when = now or utcnow()
        out: dict[str, DomainAcm] = {}
        rows = s.scalars(
            select(Domain).where(Domain.app_id == app_id, Domain.hostname.in_(list(events)))
        )
        for d in rows:
            try:
                state = apply(_state(d), events[d.hostname], when, self.policy)
            except AcmTransitionError:
                continue  # e.g. an order's result for a domain reset meanwhile: it has moved on
            self._put(d, state)
            out[d.hostname] = state
        return out

    @staticmethod
    def _put(d: Domain, state: DomainAcm) -> None:
        d.acm_status = state.status
        d.acm_status_reason = state.reason
        d.acm_attempts = state.attempts
        d.acm_next_check_at = state.next_check_at
        if state.updated_at is not None:
            d.updated_at = state.updated_at
