"""Domains, the app's own hostname, and the router's table following changes."""

from __future__ import annotations

import asyncio

import pytest
from service_fakes import Harness

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.views import UserView


async def flushed(harness: Harness) -> None:
    await asyncio.sleep(0)  # the events' turn, then the route table's flush (off the loop)
    await harness.services.routing.settled()


def test_custom_domains(harness: Harness, owner: UserView) -> None:
    d = harness.services.domains
    app = harness.services.apps.create(owner, "webby")
    other = harness.services.apps.create(owner, "other")
    added = d.add(owner, app.id, "WWW.Example.COM.")
    assert added.hostname == "www.example.com" and added.cname == "webby.apps.test"
    assert d.add(owner, app.id, "*.example.org").kind == "custom"
    for bad in ("bad_host.com", "*.*.x.com", "a.*.com", "x" * 300, "", None, "localhost"):
        with pytest.raises(InvalidParams):
            d.add(owner, app.id, bad)
    with pytest.raises(InvalidParams, match="platform's own domain"):
        d.add(owner, app.id, "sneaky.apps.test")
    with pytest.raises(InvalidParams, match="already in use"):
        d.add(owner, other.id, "www.example.com")
    listed = d.list(app.id)
    assert [(x.hostname, x.kind) for x in listed] == [
        ("webby.apps.test", "heroku"),
        ("www.example.com", "custom"),
        ("*.example.org", "custom"),
    ]
    assert d.get(app.id, "webby.apps.test").kind == "heroku"
    removed = d.remove(owner, app.id, "www.example.com")
    assert removed.hostname == "www.example.com"
    with pytest.raises(NotFound):
        d.remove(owner, app.id, "webby.apps.test")  # the app's own hostname stays


async def test_the_route_table_follows_the_app(harness: Harness, owner: UserView) -> None:
    s = harness.services
    s.routing.publish_all()
    app = s.apps.create(owner, "routed")
    await flushed(harness)
    route = harness.routes.apps[app.id]
    assert route.hostnames == ("routed.apps.test",) and not route.released
    assert ("routed.apps.test",) in harness.issuer.issued
    slug = s.releases.create_slug(app.id, {"web": "serve"})
    s.releases.deploy_slug(owner, app.id, slug.id)
    s.domains.add(owner, app.id, "routed.example.com")
    s.features.update(owner, app.id, "http-session-affinity", True)
    s.releases.update_config(owner, app.id, {"MAINTENANCE_PAGE_URL": "https://x/m.html"})
    before = harness.routes.upserts
    await flushed(harness)
    await asyncio.sleep(0.05)  # the dynos converge, which changes the table once more
    route = harness.routes.apps[app.id]
    assert route.released and route.web_quantity == 1
    assert route.hostnames == ("routed.apps.test", "routed.example.com")
    assert route.features == ("http-session-affinity",)
    assert route.maintenance_page_url == "https://x/m.html"
    assert [d.name for d in route.dynos] == ["web.1"]
    assert harness.routes.upserts - before <= 3  # coalesced, not one per change
    renamed = s.apps.update(owner, app.id, name="routed-two")
    await flushed(harness)
    assert harness.routes.apps[app.id].hostnames[0] == "routed-two.apps.test"
    assert any(c.hostnames == ("routed-two.apps.test",) for c in harness.routes.certificates)
    await s.delete_app(owner, renamed.id)
    await flushed(harness)
    assert app.id not in harness.routes.apps


async def test_deleting_an_app_stops_everything_first(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "doomed")
    slug = s.releases.create_slug(app.id, {"web": "serve"})
    s.releases.deploy_slug(owner, app.id, slug.id)
    await s.addons.create(owner, app.id, "heroku-redis:mini")
    converged = len(harness.dynos.converged)
    await s.delete_app(owner, app.id)
    await asyncio.sleep(0.05)
    assert app.id in harness.dynos.removed
    assert harness.providers[0].addons == {}
    assert app.id in harness.logs.removed
    # The add-on's detach release did not bring the dynos back.
    assert len(harness.dynos.converged) == converged
    with pytest.raises(NotFound):
        s.apps.get(owner, app.id)
