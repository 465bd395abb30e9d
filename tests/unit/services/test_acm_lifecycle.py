"""The ACM status lifecycle (pure): transitions, backoff, renewal and re-order decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from spruce.services import acm_lifecycle as acm
from spruce.services.acm_model import OrderRecord, Publication

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
POLICY = acm.Policy(max_attempts=4, first_retry=dt.timedelta(minutes=1))
STATUSES: list[acm.AcmStatus] = [
    None,
    "pending",
    "dns-verified",
    "cert issued",
    "failing",
    "failed",
]
EVENTS: list[acm.Event] = [
    acm.Picked(),
    acm.DnsVerified(),
    acm.DnsFailed("dns"),
    acm.Issued(),
    acm.OrderFailed("order"),
    acm.Deferred("wait", NOW + dt.timedelta(hours=1)),
    acm.Refreshed(),
    acm.Reset(),
]


def test_the_happy_path_is_waiting_pending_dns_verified_cert_issued():
    state = acm.DomainAcm()
    seen = [state.status]
    for event in (acm.Picked(), acm.DnsVerified(), acm.Issued()):
        state = acm.apply(state, event, NOW, POLICY)
        seen.append(state.status)
    assert seen == [None, "pending", "dns-verified", "cert issued"]
    assert state == acm.DomainAcm("cert issued", None, 0, None, NOW)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(STATUSES, EVENTS)))
def test_every_move_is_either_in_the_table_or_refused(status, event):
    state = acm.DomainAcm(status, attempts=1)
    if (status, type(event)) in acm.TRANSITIONS:
        after = acm.apply(state, event, NOW, POLICY)
        assert after.status in STATUSES
    else:
        with pytest.raises(acm.AcmTransitionError, match=type(event).__name__):
            acm.apply(state, event, NOW, POLICY)


def test_nothing_but_refresh_or_reset_leaves_failed():
    leaving = {type(e) for e in EVENTS if ("failed", type(e)) in acm.TRANSITIONS}
    assert leaving == {acm.Refreshed, acm.Reset}


def test_failures_back_off_then_fail_and_refresh_starts_over():
    state = acm.DomainAcm("pending")
    delays = []
    for _ in range(POLICY.max_attempts - 1):
        state = acm.apply(state, acm.DnsFailed("CNAME elsewhere"), NOW, POLICY)
        assert (state.status, state.reason) == ("failing", "CNAME elsewhere")
        assert state.next_check_at is not None
        delays.append(state.next_check_at - NOW)
        assert not acm.due(state, NOW)
        assert acm.due(state, state.next_check_at)
    assert delays == [dt.timedelta(minutes=m) for m in (1, 2, 4)]
    state = acm.apply(state, acm.OrderFailed("CA refused"), NOW, POLICY)
    assert (state.status, state.reason, state.next_check_at) == ("failed", "CA refused", None)
    assert not acm.due(state, NOW + dt.timedelta(days=365))
    state = acm.apply(state, acm.Refreshed(), NOW, POLICY)
    assert state == acm.DomainAcm(updated_at=NOW)
    assert acm.due(state, NOW)


def test_backoff_is_capped():
    policy = acm.Policy(first_retry=dt.timedelta(minutes=1), max_retry=dt.timedelta(minutes=5))
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 10)] == [
        dt.timedelta(minutes=m) for m in (1, 2, 4, 5, 5)
    ]


def test_a_domain_whose_orders_keep_failing_ends_failed_although_its_dns_is_fine():
    state = acm.DomainAcm("dns-verified")
    for _ in range(POLICY.max_attempts - 1):
        state = acm.apply(state, acm.OrderFailed("CA refused"), NOW, POLICY)
        assert state.status == "failing"
        state = acm.apply(state, acm.DnsVerified(), NOW, POLICY)
        assert state.status == "dns-verified"
    state = acm.apply(state, acm.OrderFailed("CA refused"), NOW, POLICY)
    assert state.status == "failed"


def test_issuing_resets_the_attempts_and_a_renewal_failure_is_failing():
    state = acm.DomainAcm("failing", "x", attempts=3)
    state = acm.apply(state, acm.Issued(), NOW, POLICY)
    assert (state.status, state.attempts) == ("cert issued", 0)
    state = acm.apply(state, acm.OrderFailed("renewal refused"), NOW, POLICY)
    assert (state.status, state.reason, state.attempts) == ("failing", "renewal refused", 1)


def test_a_rate_limit_keeps_the_status_and_says_why_until_when():
    until = NOW + dt.timedelta(hours=3)
    state = acm.apply(acm.DomainAcm("dns-verified"), acm.Deferred("rate limit", until), NOW, POLICY)
    assert (state.status, state.reason, state.next_check_at, state.attempts) == (
        "dns-verified",
        "rate limit",
        until,
        0,
    )
    domains = {"a.test": state}
    assert acm.order_reason(domains, None, NOW, POLICY) is None
    assert acm.order_reason(domains, None, until, POLICY) == "issue"
    assert acm.next_wakeup(domains, None, POLICY) == until
    # A successful check later clears the stale reason.
    assert acm.apply(state, acm.DnsVerified(), until, POLICY).reason is None


def test_order_reason_issue_change_renew():
    verified = acm.DomainAcm("dns-verified")
    issued = acm.DomainAcm("cert issued")
    expires = NOW + dt.timedelta(days=90)
    cert = acm.Certificate(frozenset({"a.test"}), expires)
    assert acm.order_reason({}, None, NOW, POLICY) is None
    assert acm.order_reason({"a.test": acm.DomainAcm("pending")}, None, NOW, POLICY) is None
    assert acm.order_reason({"a.test": verified}, None, NOW, POLICY) == "issue"
    assert acm.order_reason({"a.test": issued}, cert, NOW, POLICY) is None
    both = {"a.test": issued, "b.test": verified}
    assert acm.order_reason(both, cert, NOW, POLICY) == "domains-changed"
    # A failing domain leaves the next certificate; a removed one too.
    failing = {"a.test": issued, "b.test": acm.DomainAcm("failing")}
    assert acm.orderable(failing) == {"a.test"}
    two = acm.Certificate(frozenset({"a.test", "b.test"}), expires)
    assert acm.order_reason(failing, two, NOW, POLICY) == "domains-changed"
    # Renewal: 30 days before expiry by default.
    due = expires - dt.timedelta(days=30)
    assert acm.renewal_at(expires, POLICY) == due
    assert acm.order_reason({"a.test": issued}, cert, due - dt.timedelta(seconds=1), POLICY) is None
    assert acm.order_reason({"a.test": issued}, cert, due, POLICY) == "renew"
    assert acm.next_wakeup({"a.test": issued}, cert, POLICY) == due


def _record(**kw: object) -> OrderRecord:
    base = OrderRecord(hostnames=("*.a.test", "a.test"), key_pem="k", started_at=NOW)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_order_events_per_domain():
    assert acm.order_events(_record(stage="authorizing")) == {}
    assert acm.order_events(_record(stage="valid")) == {
        "*.a.test": acm.Issued(),
        "a.test": acm.Issued(),
    }
    failed_one = _record(stage="invalid", problem="p", failed=(("*.a.test", "no TXT"),))
    assert acm.order_events(failed_one) == {
        "*.a.test": acm.OrderFailed("no TXT"),
        "a.test": acm.DnsVerified(),
    }
    refused = _record(stage="invalid", problem="rejectedIdentifier")
    assert acm.order_events(refused) == {
        "*.a.test": acm.OrderFailed("rejectedIdentifier"),
        "a.test": acm.OrderFailed("rejectedIdentifier"),
    }
    until = NOW + dt.timedelta(hours=1)
    limited = _record(
        stage="new",
        rate_limited=True,
        retry_at=until,
        problem="too many",
        publications=(Publication("dns-01", "x", "y"),),
    )
    assert acm.order_events(limited) == {
        "*.a.test": acm.Deferred("too many", until),
        "a.test": acm.Deferred("too many", until),
    }


def test_apply_all_ignores_domains_no_longer_on_the_app():
    domains = {"a.test": acm.DomainAcm("dns-verified")}
    out = acm.apply_all(domains, {"a.test": acm.Issued(), "gone.test": acm.Issued()}, NOW, POLICY)
    assert out == {"a.test": acm.DomainAcm("cert issued", None, 0, None, NOW)}
