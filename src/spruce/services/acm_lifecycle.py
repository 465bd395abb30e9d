"""ACM status of each custom domain, and when an app's certificate is (re)ordered. Pure.

Per domain (the `acm_status` Heroku's CLI shows), every allowed move is in `TRANSITIONS`:

    None (waiting) --Picked--> pending --DnsVerified--> dns-verified --Issued--> cert issued
    pending / dns-verified / cert issued --DnsFailed | OrderFailed--> failing (retry, backoff)
    failing --(attempts exhausted)--> failed --Refreshed (certs:auto:refresh)--> None

An app's custom domains fall into certificate groups (`certificate_group`): each wildcard
with its apex beside it gets a certificate of its own (DNS-01), the other names share one
(HTTP-01). So a specific name has a certificate of its own even when a wildcard covers it:
the router serves it first, and the wildcard once it is gone.

Per group, `order_reason` says whether to order now: no certificate yet, the set of verified
domains differs from the certificate's names (a domain added or removed), or renewal is due
(`renew_before` ahead of expiry, 30 days by default, never before two thirds of the
certificate's life).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Literal, cast

from .acm_model import OrderRecord

AcmStatus = Literal["pending", "dns-verified", "cert issued", "failing", "failed"] | None
OrderReason = Literal["issue", "domains-changed", "renew"]


@dataclass(frozen=True)
class Policy:
    renew_before: dt.timedelta = dt.timedelta(days=30)
    max_attempts: int = 10
    first_retry: dt.timedelta = dt.timedelta(minutes=1)
    max_retry: dt.timedelta = dt.timedelta(hours=1)

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay after the `attempts`-th consecutive failure (1, 2, 4, ... capped)."""
        delay: dt.timedelta = self.first_retry * (2 ** max(attempts - 1, 0))
        return min(delay, self.max_retry)


@dataclass(frozen=True)
class DomainAcm:
    status: AcmStatus = None
    reason: str | None = None
    attempts: int = 0
    """Consecutive failed checks or orders."""
    next_check_at: dt.datetime | None = None
    """Not before this time (None: as soon as the scheduler runs)."""
    updated_at: dt.datetime | None = None


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picked:
    """The scheduler starts on a domain waiting for ACM."""


@dataclass(frozen=True)
class DnsVerified:
    """The pre-checks passed."""


@dataclass(frozen=True)
class DnsFailed:
    reason: str


@dataclass(frozen=True)
class Issued:
    """A certificate covering the domain was issued."""


@dataclass(frozen=True)
class OrderFailed:
    reason: str


@dataclass(frozen=True)
class Deferred:
    """The CA asked to wait (rate limit): keep the status, say why, come back `until`."""

    reason: str
    until: dt.datetime


@dataclass(frozen=True)
class Refreshed:
    """certs:auto:refresh: forget failures and start again."""


@dataclass(frozen=True)
class Reset:
    """The domain was (re)added or ACM was enabled."""


Event = Picked | DnsVerified | DnsFailed | Issued | OrderFailed | Deferred | Refreshed | Reset
_Kind = type[Picked | DnsVerified | DnsFailed | Issued | OrderFailed | Deferred | Refreshed | Reset]
_FAIL = "fail"  # a failure: failing, or failed once attempts are exhausted
_KEEP = "keep"  # the status stays as it is

ACTIVE: tuple[AcmStatus, ...] = ("pending", "dns-verified", "cert issued", "failing")
TRANSITIONS: dict[tuple[AcmStatus, _Kind], str | None] = {
    (None, Picked): "pending",
    ("pending", DnsVerified): "dns-verified",
    ("failing", DnsVerified): "dns-verified",
    ("dns-verified", DnsVerified): _KEEP,
    ("cert issued", DnsVerified): _KEEP,
    ("dns-verified", Issued): "cert issued",
    ("failing", Issued): "cert issued",
    ("cert issued", Issued): "cert issued",
    **{(s, DnsFailed): _FAIL for s in ACTIVE},
    **{(s, OrderFailed): _FAIL for s in ("dns-verified", "cert issued", "failing")},
    **{(s, Deferred): _KEEP for s in ("dns-verified", "cert issued", "failing")},
    **{(s, Refreshed): None for s in ("failing", "failed")},
    **{(s, Refreshed): _KEEP for s in (None, "pending", "dns-verified", "cert issued")},
    **{(s, Reset): None for s in (None, *ACTIVE, "failed")},
}


class AcmTransitionError(ValueError):
    pass


def apply(state: DomainAcm, event: Event, now: dt.datetime, policy: Policy) -> DomainAcm:
    """The domain's state after `event`; raises AcmTransitionError for a move not allowed."""
    key = (state.status, type(event))
    if key not in TRANSITIONS:
        raise AcmTransitionError(
            f"ACM event {type(event).__name__} is not allowed in status {state.status!r}"
        )
    target = TRANSITIONS[key]
    if isinstance(event, Reset) or (isinstance(event, Refreshed) and target is None):
        return DomainAcm(updated_at=now)
    if target == _FAIL:
        assert isinstance(event, DnsFailed | OrderFailed)
        attempts = state.attempts + 1
        if attempts >= policy.max_attempts:
            return DomainAcm("failed", event.reason, attempts, None, now)
        return DomainAcm("failing", event.reason, attempts, now + policy.backoff(attempts), now)
    if isinstance(event, Deferred):
        return replace(state, reason=event.reason, next_check_at=event.until, updated_at=now)
    if target == _KEEP:
        if isinstance(event, Refreshed):
            return replace(state, next_check_at=None, updated_at=now)
        # Nothing changes but the reason of an earlier wait, which no longer holds.
        if isinstance(event, DnsVerified) and state.reason is not None:
            return replace(state, reason=None, updated_at=now)
        return state
    assert target is not None
    if isinstance(event, Issued):
        return DomainAcm("cert issued", None, 0, None, now)
    # pending and dns-verified keep the attempt count: a domain whose DNS is fine but whose
    # orders keep failing still ends `failed`.
    return DomainAcm(cast(AcmStatus, target), None, state.attempts, None, now)


def due(state: DomainAcm, now: dt.datetime) -> bool:
    """Should the scheduler check this domain now? (Renewals are decided per app.)"""
    if state.status in ("failed", "cert issued"):
        return False
    return state.next_check_at is None or state.next_check_at <= now


# -- per app --------------------------------------------------------------------------------


SPECIFIC = ""
"""The group of an app's names that no wildcard of the app takes (one certificate)."""


def certificate_group(hostname: str, hostnames: Collection[str]) -> str:
    """`*.example.com` for a wildcard and for `example.com` beside it, else SPECIFIC."""
    if hostname.startswith("*."):
        return hostname
    if f"*.{hostname}" in hostnames:
        return f"*.{hostname}"
    return SPECIFIC


def groups(hostnames: Collection[str]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for host in hostnames:
        out.setdefault(certificate_group(host, hostnames), set()).add(host)
    return {g: frozenset(names) for g, names in out.items()}


@dataclass(frozen=True)
class Certificate:
    hostnames: frozenset[str]
    expires_at: dt.datetime
    starts_at: dt.datetime | None = None


def renewal_at(
    expires_at: dt.datetime, policy: Policy, starts_at: dt.datetime | None = None
) -> dt.datetime:
    """`renew_before` ahead of expiry, but not before two thirds of the certificate's life
    (a certificate shorter-lived than `renew_before` would otherwise renew without end)."""
    at = expires_at - policy.renew_before
    if starts_at is not None:
        at = max(at, starts_at + (expires_at - starts_at) * 2 / 3)
    return at


def orderable(domains: Mapping[str, DomainAcm]) -> frozenset[str]:
    """The names the next certificate covers: those whose DNS checks pass."""
    return frozenset(h for h, d in domains.items() if d.status in ("dns-verified", "cert issued"))


def order_reason(
    domains: Mapping[str, DomainAcm],
    current: Certificate | None,
    now: dt.datetime,
    policy: Policy,
) -> OrderReason | None:
    wanted = orderable(domains)
    if not wanted:
        return None
    if any(d.next_check_at and d.next_check_at > now for h, d in domains.items() if h in wanted):
        return None  # the CA asked to wait (rate limit) or a failed order backs off
    if current is None:
        return "issue"
    if wanted != current.hostnames:
        return "domains-changed"
    if now >= renewal_at(current.expires_at, policy, current.starts_at):
        return "renew"
    return None


def next_wakeup(
    domains: Mapping[str, DomainAcm], current: Certificate | None, policy: Policy
) -> dt.datetime | None:
    """The earliest time something is due: a domain's retry or the certificate's renewal."""
    times = [
        d.next_check_at
        for d in domains.values()
        if d.next_check_at is not None and d.status != "failed"
    ]
    if current is not None:
        times.append(renewal_at(current.expires_at, policy, current.starts_at))
    return min(times, default=None)


def order_events(record: OrderRecord) -> dict[str, Event]:
    """What an order's record means for each of its domains (empty while it just runs)."""
    if record.stage == "valid":
        return {h: Issued() for h in record.hostnames}
    if record.stage == "invalid":
        failed = dict(record.failed)
        if not failed:
            reason = record.problem or "The certificate order failed."
            return {h: OrderFailed(reason) for h in record.hostnames}
        # Names the CA did validate stay verified; the next order leaves the failed ones out.
        return {
            h: OrderFailed(failed[h]) if h in failed else DnsVerified() for h in record.hostnames
        }
    if record.rate_limited and record.retry_at is not None:
        reason = record.problem or "The certificate authority asked Spruce to wait."
        return {h: Deferred(reason, record.retry_at) for h in record.hostnames}
    return {}


def apply_all(
    domains: Mapping[str, DomainAcm],
    events: Mapping[str, Event],
    now: dt.datetime,
    policy: Policy,
) -> dict[str, DomainAcm]:
    out = dict(domains)
    for host, event in events.items():
        if host in out:
            out[host] = apply(out[host], event, now, policy)
    return out
