"""ACM's rules: the `acm` flag, each domain's status through a scheduler pass, certificate
groups (specific over wildcard), failures and their reasons, re-orders, renewal, disable,
and resuming from the store after a restart. The CA is services_fakes.FakeAuthority."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest
from service_fakes import ACM_POLICY, Clock, FakeAuthority, Harness, make_services
from sqlalchemy import select

from spruce.services.errors import InvalidParams
from spruce.services.views import AppView, UserView
from spruce.store.db import Store
from spruce.store.models import AcmAccount, AcmOrder, SniEndpoint


async def settle(h: Harness, passes: int = 10) -> dt.datetime | None:
    """Scheduler passes until nothing more is due at the test's 'now'."""
    assert h.clock is not None
    wake = None
    for _ in range(passes):
        wake = await h.services.acm_scheduler.run_once()
        if wake is None or wake > h.clock.now:
            break
    await asyncio.sleep(0)
    await h.services.routing.settled()  # the route table's coalesced flush
    return wake


def statuses(h: Harness, app: AppView) -> dict[str, tuple[str | None, str | None]]:
    return {
        d.hostname: (d.acm_status, d.acm_status_reason)
        for d in h.services.domains.list(app.id, with_default=False)
    }


def acm_endpoints(h: Harness, app: AppView) -> dict[frozenset[str], str]:
    return {frozenset(e.cert.cert_domains): e.id for e in h.services.certs.list(app.id) if e.acm}


def served(h: Harness, name: str) -> frozenset[str]:
    """The names of the certificate the router's table gives `name` (exact, then wildcard)."""
    certs = h.routes.certificates
    for cert in certs:
        if name in cert.hostnames:
            return frozenset(cert.hostnames)
    wildcard = "*." + name.split(".", 1)[1]
    for cert in certs:
        if wildcard in cert.hostnames:
            return frozenset(cert.hostnames)
    return frozenset()


@pytest.fixture
async def app(harness: Harness, owner: UserView) -> AppView:
    harness.services.routing.publish_all()
    return harness.services.apps.create(owner, "shop")


async def test_acm_is_off_until_enabled_and_the_formation_never_changes_it(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s = harness.services
    assert not app.acm
    slug = s.releases.create_slug(app.id, {"web": "serve"})
    s.releases.deploy_slug(owner, app.id, slug.id)
    for size in ("eco", "basic", "standard-1x"):
        s.formation.update(owner, app.id, [{"type": "web", "size": size}])
        assert not s.apps.get(owner, app.id).acm
    s.formation.update(owner, app.id, [{"type": "web", "size": "eco"}])
    assert s.acm.enable(owner, app.id).acm  # on an Eco app
    for size in ("basic", "eco", "performance-m"):
        s.formation.update(owner, app.id, [{"type": "web", "size": size, "quantity": 1}])
        assert s.apps.get(owner, app.id).acm
    assert s.acm.enable(owner, app.id).acm  # again: nothing changes
    assert not s.acm.disable(owner, app.id).acm
    with pytest.raises(InvalidParams, match="not enabled"):
        s.acm.refresh(owner, app.id)


async def test_a_domain_goes_waiting_pending_dns_verified_cert_issued(
    harness: Harness, owner: UserView, app: AppView, tmp_path: Path
) -> None:
    s, ca = harness.services, harness.authority
    assert ca is not None
    s.domains.add(owner, app.id, "www.shop.example")
    assert statuses(harness, app) == {"www.shop.example": (None, None)}  # ACM is off
    await settle(harness)
    assert ca.begun == []
    s.acm.enable(owner, app.id)
    assert statuses(harness, app) == {"www.shop.example": (None, None)}  # Waiting
    ca.poll = dt.timedelta(seconds=5)  # the CA validates for a while
    in_table: list[bool] = []

    def router_has(tokens: list[str]) -> None:  # when the CA fetches the tokens
        route = harness.routes.apps[app.id]
        in_table.append(bool(tokens) and set(tokens) <= set(dict(route.acme_challenges)))

    ca.before_answer = router_has
    await settle(harness)
    assert in_table == [True]
    # Checked, ordered, the HTTP-01 token in the router's table before the CA was asked.
    assert ca.checked == ["www.shop.example"]
    assert ca.begun == [("www.shop.example",)]
    assert statuses(harness, app) == {"www.shop.example": ("dns-verified", None)}
    [token] = ca.answered
    assert dict(harness.routes.apps[app.id].acme_challenges) == {token: "ka-www.shop.example"}
    harness.clock.advance(seconds=5)  # type: ignore[union-attr]
    await settle(harness)
    assert statuses(harness, app) == {"www.shop.example": ("cert issued", None)}
    assert harness.routes.apps[app.id].acme_challenges == ()  # withdrawn once done
    [endpoint] = [e for e in s.certs.list(app.id) if e.acm]
    assert endpoint.cert.cert_domains == ("www.shop.example",)
    domain = s.domains.get(app.id, "www.shop.example")
    assert domain.sni_endpoint is not None and domain.sni_endpoint.id == endpoint.id
    assert served(harness, "www.shop.example") == {"www.shop.example"}
    # The router got the key in the clear; the store has it sealed, with a 0600 key file.
    [route_cert] = [c for c in harness.routes.certificates if c.id == endpoint.id]
    assert "PRIVATE KEY" in route_cert.key_pem
    with s.store.session() as db:
        row = db.get(SniEndpoint, endpoint.id)
        assert row is not None and row.acm and "PRIVATE KEY" not in row.private_key
        account = db.scalar(select(AcmAccount))
        assert account is not None and ca.account()["key"] not in account.sealed  # type: ignore[index]
    key_file = tmp_path / "home" / "seal.key"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    # Nothing is due until the renewal, 30 days before the certificate's end.
    wake = await settle(harness)
    assert wake is not None
    assert wake == endpoint.cert.expires_at - ACM_POLICY.renew_before


async def test_failures_say_why_back_off_end_failed_and_refresh_starts_again(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca, clock = harness.services, harness.authority, harness.clock
    assert ca is not None and clock is not None
    pointed = "www.shop.example has a CNAME record pointing to elsewhere.example, not ..."
    ca.problems["www.shop.example"] = pointed
    ca.refusals["api.shop.example"] = "The CA could not validate api.shop.example: 404"
    s.domains.add(owner, app.id, "www.shop.example")
    s.domains.add(owner, app.id, "api.shop.example")
    s.acm.enable(owner, app.id)
    await settle(harness)
    assert statuses(harness, app) == {
        "www.shop.example": ("failing", pointed),
        "api.shop.example": ("failing", "The CA could not validate api.shop.example: 404"),
    }
    checks = len(ca.checked)
    await settle(harness)
    assert len(ca.checked) == checks  # backing off: nothing is checked again yet
    clock.advance(minutes=1)
    await settle(harness)
    assert len(ca.checked) == checks + 2  # both retried after the first backoff
    clock.advance(minutes=2)  # (1, 2, 4 ... minutes)
    await settle(harness)
    assert statuses(harness, app)["www.shop.example"] == ("failed", pointed)
    assert statuses(harness, app)["api.shop.example"][0] == "failed"
    clock.advance(hours=5)
    checks = len(ca.checked)
    await settle(harness)
    assert len(ca.checked) == checks  # failed: no more attempts until a refresh
    # The user fixes DNS and asks again.
    del ca.problems["www.shop.example"]
    del ca.refusals["api.shop.example"]
    s.acm.refresh(owner, app.id)
    assert statuses(harness, app) == {
        "www.shop.example": (None, None),
        "api.shop.example": (None, None),
    }
    await settle(harness)
    assert statuses(harness, app) == {
        "www.shop.example": ("cert issued", None),
        "api.shop.example": ("cert issued", None),
    }
    assert list(acm_endpoints(harness, app)) == [{"www.shop.example", "api.shop.example"}]


async def test_rate_limits_keep_the_status_and_say_when(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca, clock = harness.services, harness.authority, harness.clock
    assert ca is not None and clock is not None
    s.domains.add(owner, app.id, "www.shop.example")
    ca.rate_limited_until = clock.now + dt.timedelta(hours=1)
    s.acm.enable(owner, app.id)
    wake = await settle(harness)
    status, reason = statuses(harness, app)["www.shop.example"]
    assert status == "dns-verified" and reason is not None and "rate limit" in reason
    assert wake == ca.rate_limited_until
    clock.advance(hours=1)
    await settle(harness)
    assert statuses(harness, app)["www.shop.example"] == ("cert issued", None)


async def test_a_specific_name_has_its_own_certificate_and_the_wildcard_takes_over(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca = harness.services, harness.authority
    assert ca is not None
    for host in ("*.shop.example", "shop.example", "www.shop.example", "shop.other"):
        s.domains.add(owner, app.id, host)
    s.acm.enable(owner, app.id)
    await settle(harness)
    assert set(acm_endpoints(harness, app)) == {
        frozenset({"*.shop.example", "shop.example"}),  # DNS-01, apex beside its wildcard
        frozenset({"www.shop.example", "shop.other"}),  # the specific names (HTTP-01)
    }
    assert served(harness, "www.shop.example") == {"www.shop.example", "shop.other"}
    assert served(harness, "api.shop.example") == {"*.shop.example", "shop.example"}
    begun = len(ca.begun)
    s.domains.remove(owner, app.id, "www.shop.example")
    await settle(harness)
    # The other specific name is re-ordered alone; www.shop.example falls to the wildcard.
    assert ca.begun[begun:] == [("shop.other",)]
    assert served(harness, "www.shop.example") == {"*.shop.example", "shop.example"}
    s.domains.remove(owner, app.id, "shop.other")
    await settle(harness)
    assert set(acm_endpoints(harness, app)) == {frozenset({"*.shop.example", "shop.example"})}
    assert len(ca.begun) == begun + 1  # a group with no domain left needs no order


async def test_adding_a_domain_reorders_and_a_renewal_replaces_in_place(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca, clock = harness.services, harness.authority, harness.clock
    assert ca is not None and clock is not None
    s.domains.add(owner, app.id, "www.shop.example")
    s.acm.enable(owner, app.id)
    await settle(harness)
    [first] = acm_endpoints(harness, app).values()
    s.domains.add(owner, app.id, "api.shop.example")
    await settle(harness)
    assert ca.begun[-1] == ("api.shop.example", "www.shop.example")
    assert acm_endpoints(harness, app) == {
        frozenset({"www.shop.example", "api.shop.example"}): first
    }
    [endpoint] = [e for e in s.certs.list(app.id) if e.acm]
    # Renewal: due 30 days before the end (the fake CA issues for 90 days).
    clock.now = endpoint.cert.expires_at - ACM_POLICY.renew_before - dt.timedelta(seconds=1)
    orders = len(ca.begun)
    await settle(harness)
    assert len(ca.begun) == orders
    clock.advance(seconds=1)
    await settle(harness)
    assert len(ca.begun) == orders + 1
    [renewed] = [e for e in s.certs.list(app.id) if e.acm]
    assert (renewed.id, renewed.name) == (endpoint.id, endpoint.name)  # replaced in place
    assert renewed.cert.expires_at > endpoint.cert.expires_at
    assert statuses(harness, app)["api.shop.example"] == ("cert issued", None)


async def test_a_certificate_shorter_lived_than_renew_before_renews_at_two_thirds(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca, clock = harness.services, harness.authority, harness.clock
    assert ca is not None and clock is not None
    ca.validity = dt.timedelta(days=6)  # renew_before is 30 days
    s.domains.add(owner, app.id, "www.shop.example")
    s.acm.enable(owner, app.id)
    wake = await settle(harness)
    assert wake == clock.now + dt.timedelta(days=4)
    assert len(ca.begun) == 1


async def test_disable_removes_certificates_and_abandons_orders(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca, clock = harness.services, harness.authority, harness.clock
    assert ca is not None and clock is not None
    s.domains.add(owner, app.id, "www.shop.example")
    s.acm.enable(owner, app.id)
    await settle(harness)
    s.domains.add(owner, app.id, "api.shop.example")
    ca.poll = dt.timedelta(minutes=5)
    await settle(harness)  # the re-order waits at the CA
    assert harness.routes.apps[app.id].acme_challenges != ()
    s.acm.disable(owner, app.id)
    assert acm_endpoints(harness, app) == {}
    assert statuses(harness, app) == {
        "www.shop.example": (None, None),
        "api.shop.example": (None, None),
    }
    assert s.domains.get(app.id, "www.shop.example").sni_endpoint is None
    await settle(harness)
    assert ca.abandoned == [("api.shop.example", "www.shop.example")]
    assert harness.routes.apps[app.id].acme_challenges == ()
    with s.store.session() as db:
        assert db.scalars(select(AcmOrder)).all() == []
    # ACM's certificates are not the user's to change or remove.
    s.acm.enable(owner, app.id)
    ca.poll = dt.timedelta(0)
    await settle(harness)
    [endpoint] = [e for e in s.certs.list(app.id) if e.acm]
    with pytest.raises(InvalidParams, match="certs:auto:disable"):
        s.certs.remove(owner, app.id, endpoint.name)


async def test_turned_off_during_an_orders_last_step_installs_nothing(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca = harness.services, harness.authority
    assert ca is not None
    loop = asyncio.get_running_loop()

    def disable_meanwhile(stage: str) -> None:  # in the CA's thread, as a user would
        if stage == "finalizing":
            loop.call_soon_threadsafe(s.acm.disable, owner, app.id)

    ca.before_step = disable_meanwhile
    s.domains.add(owner, app.id, "www.shop.example")
    s.acm.enable(owner, app.id)
    await settle(harness)
    assert not s.apps.get(owner, app.id).acm
    assert acm_endpoints(harness, app) == {}
    assert statuses(harness, app) == {"www.shop.example": (None, None)}


async def test_a_restart_mid_order_resumes_it_from_the_store(
    tmp_path: Path, owner_email: str = "owner@example.com"
) -> None:
    store = Store.memory()
    home = tmp_path / "home"
    clock = Clock()
    ca = FakeAuthority(clock)
    ca.poll = dt.timedelta(seconds=30)
    first = make_services(store, home, authority=ca, clock=clock)
    owner = first.services.accounts.create_user(owner_email)[0]
    app = first.services.apps.create(owner, "shop")
    first.services.domains.add(owner, app.id, "www.shop.example")
    first.services.acm.enable(owner, app.id)
    await settle(first)
    [(stage, url)] = ca.steps[-1:]
    assert stage == "authorizing" and url is not None  # answered, waiting for the CA
    account = ca.account()
    # A new control plane over the same store and home, with a CA that knows the order.
    ca2 = FakeAuthority(clock)
    ca2._orders = ca._orders
    second = make_services(store, home, authority=ca2, clock=clock)
    second.services.routing.publish_all()
    token = ca.answered[0]
    assert dict(second.routes.apps[app.id].acme_challenges) == {token: "ka-www.shop.example"}
    clock.advance(seconds=30)
    await settle(second)
    assert ca2.restored == [account]  # the same account
    assert ca2.begun == []  # no new order: the stored one went on
    assert ca2.steps[0] == ("finalizing", url)
    assert statuses(second, app) == {"www.shop.example": ("cert issued", None)}
    store.dispose()


async def test_orders_of_a_deleted_app_are_abandoned(
    harness: Harness, owner: UserView, app: AppView
) -> None:
    s, ca = harness.services, harness.authority
    assert ca is not None
    ca.poll = dt.timedelta(minutes=5)
    s.domains.add(owner, app.id, "www.shop.example")
    s.acm.enable(owner, app.id)
    await settle(harness)
    await s.delete_app(owner, app.id)
    await settle(harness)
    assert ca.abandoned == [("www.shop.example",)]
