"""Listings cost a constant number of queries, whatever their length (issue 23).

Each check builds the same shape twice, small and ten times bigger, and counts the store's
statements: a per-row query anywhere makes the big count grow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from service_fakes import FakeProvider, Harness, make_services

from spruce.services.views import ListRange, UserView
from spruce.store.db import Store


def counted(store: Store, fn: Callable[[], Any]) -> int:
    cell = [0]
    with store.queries(cell):
        fn()
    return cell[0]


def populated(tmp_path: Path, n: int) -> tuple[Harness, UserView, list[str]]:
    store = Store.memory()
    store.count_queries()
    h = make_services(store, tmp_path / f"home{n}", providers=[FakeProvider()])
    s = h.services
    owner, _ = s.accounts.create_user(f"owner{n}@example.com")
    ids = []
    for i in range(n):
        app = s.apps.create(owner, f"app-{n}-{i:03d}")
        slug = s.releases.create_slug(app.id, {"web": "serve"})
        s.releases.deploy_slug(owner, app.id, slug.id)
        s.releases.update_config(owner, app.id, {"A": str(i)})
        s.domains.add(owner, app.id, f"www.app-{n}-{i}.example.com")
        s.features.update(owner, app.id, "preboot", True)
        ids.append(app.id)
    return h, owner, ids


async def test_listings_do_not_grow_with_their_length(tmp_path: Path) -> None:
    small, owner_s, ids_s = populated(tmp_path, 3)
    big, owner_b, ids_b = populated(tmp_path, 30)

    def same(what: str, fn_small: Callable[[], Any], fn_big: Callable[[], Any]) -> None:
        a = counted(small.services.store, fn_small)
        b = counted(big.services.store, fn_big)
        assert a == b, f"{what}: {a} queries for the short listing, {b} for the long one"

    same(
        "apps",
        lambda: small.services.apps.list_for(owner_s),
        lambda: big.services.apps.list_for(owner_b),
    )
    same(
        "the router's table",
        lambda: small.services.routing.app_routes(),
        lambda: big.services.routing.app_routes(),
    )
    same(
        "the router's certificates",
        lambda: small.services.routing.certificates(),
        lambda: big.services.routing.certificates(),
    )
    same(
        "dynos to bring back at start",
        lambda: small.services.deployments.wanted_runtimes(),
        lambda: big.services.deployments.wanted_runtimes(),
    )
    # Per app: releases and domains of one app cost the same at 3 or 30 apps.
    same(
        "releases",
        lambda: small.services.releases.list(ids_s[0]),
        lambda: big.services.releases.list(ids_b[0]),
    )
    same(
        "domains",
        lambda: small.services.domains.list(ids_s[0]),
        lambda: big.services.domains.list(ids_b[0]),
    )
    same(
        "one app",
        lambda: small.services.apps.get(owner_s, ids_s[0]),
        lambda: big.services.apps.get(owner_b, ids_b[0]),
    )


async def test_a_long_release_history_is_one_query(tmp_path: Path) -> None:
    h, owner, ids = populated(tmp_path, 1)
    releases = h.services.releases
    before = counted(h.services.store, lambda: releases.list(ids[0]))
    for i in range(20):
        releases.update_config(owner, ids[0], {"B": str(i)})
    after = counted(h.services.store, lambda: releases.list(ids[0]))
    assert after == before, (before, after)


async def test_add_on_listings(tmp_path: Path) -> None:
    h, owner, ids = populated(tmp_path, 2)
    s = h.services
    await s.addons.create(owner, ids[0], "heroku-redis:mini")
    one = counted(s.store, lambda: s.addons.visible(owner))
    two = counted(s.store, lambda: s.addons.attachments(owner))
    for _ in range(5):
        await s.addons.create(owner, ids[1], "heroku-redis:mini")
    assert counted(s.store, lambda: s.addons.visible(owner)) == one
    assert counted(s.store, lambda: s.addons.attachments(owner)) == two


async def test_a_verified_key_costs_no_query(tmp_path: Path) -> None:
    store = Store.memory()
    store.count_queries()
    h = make_services(store, tmp_path)
    _, key = h.services.accounts.create_user("k@example.com")
    accounts = h.services.accounts
    assert accounts.verified(key) is None  # not verified yet: `authenticate` reads the store
    assert counted(store, lambda: accounts.authenticate(key)) == 1
    assert counted(store, lambda: accounts.authenticate(key)) == 0
    assert counted(store, lambda: accounts.verified(key)) == 0
    user = accounts.verified(key)
    assert user is not None and user.email == "k@example.com"
    assert accounts.verified(key + "x") is None and accounts.verified("") is None


async def test_a_page_of_apps_is_cut_in_the_database(tmp_path: Path) -> None:
    h, owner, _ = populated(tmp_path, 12)
    apps = h.services.apps
    names = sorted(a.name for a in apps.list_for(owner))
    for field, desc in (("name", False), ("name", True), ("id", False), ("updated_at", False)):
        # Walk the pages as a client follows Next-Range: `]last..` after the first.
        seen: list[str] = []
        rng = ListRange(field, limit=5, descending=desc)
        while True:
            page, more = apps.page_for(owner, rng)
            seen += [a.name for a in page]
            if not more:
                break
            last = getattr(page[-1], field)
            start = last.strftime("%Y-%m-%dT%H:%M:%SZ") if field == "updated_at" else last
            rng = ListRange(field, start, True, 5, desc)
        if field == "name":
            assert seen == (names[::-1] if desc else names)
        elif field == "id":
            assert len(seen) == len(set(seen)) == 12
        else:
            # Whole-second timestamps and an exclusive `]last..`: what shares the last
            # item's second is after the page (as Heroku's Range has it); never twice.
            assert len(seen) == len(set(seen)) and set(seen) <= set(names)
    # One page costs the same queries as any other, and a page of 5 returns 5.
    first = counted(h.services.store, lambda: apps.page_for(owner, ListRange("name", limit=5)))
    later = counted(
        h.services.store, lambda: apps.page_for(owner, ListRange("name", names[5], limit=5))
    )
    assert first == later
    page, more = apps.page_for(owner, ListRange("name", names[10], limit=5))
    assert [a.name for a in page] == names[10:] and not more
