"""Statements per API request, on a real `spruce up` (SQLite and PostgreSQL): listings cost
the same however long they are, and the calls clients make most keep a statement budget
(issue 23).

The platform runs with SPRUCE_DEBUG_QUERIES=1: each response then says in `Spruce-Queries`
how many statements its request ran (the platform's reactions to a change, the router's
table and the dynos' converge, run afterwards off the request and are not counted).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import PostgresServer, RunningPlatform, start_platform
from test_access import create_user

# The most statements each call may run. A change that makes one of them read per row, read
# back what it just wrote or look the app up twice goes over.
BUDGETS = {
    "GET /apps/{app}": 1,
    "GET config-vars": 2,
    "GET releases (Range)": 2,
    "PATCH config-vars": 6,
    "PATCH formation": 4,
    "POST /apps": 4,  # 3, and the owner's account features (labs) the new app inherits
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    env = {"SPRUCE_DEBUG_QUERIES": "1"}
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        env["SPRUCE_DATABASE_URL"] = server.create_database()
    p = start_platform(tmp_path_factory.mktemp(f"budgets-{request.param}"), extra_env=env)
    yield p
    p.stop()


def queries(c: httpx.Client, method: str, url: str, **kw: Any) -> int:
    """The statements of one request, its key already verified (a key's first use in a
    while costs one statement more: its look-up)."""
    assert c.get("/account").status_code == 200
    r = c.request(method, url, **kw)
    assert r.status_code < 300, (method, url, r.status_code, r.text)
    return int(r.headers["Spruce-Queries"])


def add_apps(c: httpx.Client, tag: str, count: int) -> list[str]:
    """Apps as clients leave them: config vars, a release with code, a custom domain."""
    names = []
    for _ in range(count):
        name = f"qb-{tag}-{uuid.uuid4().hex[:6]}"
        assert c.post("/apps", json={"name": name}).status_code == 201
        slug = c.post(f"/apps/{name}/slugs", json={"process_types": {"worker": "sleep 1"}})
        assert slug.status_code == 201, slug.text
        rel = c.post(f"/apps/{name}/releases", json={"slug": slug.json()["id"]})
        assert rel.status_code == 201, rel.text
        assert c.patch(f"/apps/{name}/config-vars", json={"A": "1", "B": "2"}).status_code == 200
        r = c.post(f"/apps/{name}/domains", json={"hostname": f"www.{name}.example.com"})
        assert r.status_code == 201, r.text
        names.append(name)
    return names


def test_listings_cost_the_same_however_long(platform: RunningPlatform) -> None:
    tag = uuid.uuid4().hex[:4]
    user = platform.client(create_user(platform, f"lister-{tag}@example.com"))
    with platform.client() as operator, user:
        add_apps(user, tag, 2)
        short = {
            "operator": queries(operator, "GET", "/apps"),
            "user": queries(user, "GET", "/apps"),
            "user, a page": queries(user, "GET", "/apps", headers={"Range": "name ..; max=1"}),
        }
        add_apps(user, tag, 8)
        long = {
            "operator": queries(operator, "GET", "/apps"),
            "user": queries(user, "GET", "/apps"),
            "user, a page": queries(user, "GET", "/apps", headers={"Range": "name ..; max=1"}),
        }
        assert long == short, f"GET /apps: {short} statements for 2 apps, {long} for 10"
        assert max(long.values()) <= 1
        assert len(user.get("/apps").json()) == 10


def test_the_common_calls_keep_their_budgets(platform: RunningPlatform) -> None:
    tag = uuid.uuid4().hex[:4]
    with platform.client() as c:
        name = add_apps(c, tag, 1)[0]
        for _ in range(4):  # a history longer than the page asked for
            queries(c, "PATCH", f"/apps/{name}/config-vars", json={"N": uuid.uuid4().hex})
        spent = {
            "GET /apps/{app}": queries(c, "GET", f"/apps/{name}"),
            "GET config-vars": queries(c, "GET", f"/apps/{name}/config-vars"),
            "GET releases (Range)": queries(
                c,
                "GET",
                f"/apps/{name}/releases",
                headers={"Range": "version ..; max=2, order=desc"},
            ),
            "PATCH config-vars": queries(
                c, "PATCH", f"/apps/{name}/config-vars", json={"A": uuid.uuid4().hex}
            ),
            "PATCH formation": queries(
                c,
                "PATCH",
                f"/apps/{name}/formation",
                json={"updates": [{"type": "worker", "quantity": 0, "size": "standard-1x"}]},
            ),
            "POST /apps": queries(c, "POST", "/apps", json={"name": f"qb-{tag}-new"}),
        }
        over = {k: (v, BUDGETS[k]) for k, v in spent.items() if v > BUDGETS[k]}
        assert not over, f"over budget (spent, budget): {over}"
        # what those calls did is there: the budget was not met by skipping work
        assert c.get(f"/apps/{name}/config-vars").json()["A"] != "1"
        [worker] = c.get(f"/apps/{name}/formation").json()
        assert worker["size"] == "Standard-1X" and worker["quantity"] == 0
        releases = c.get(f"/apps/{name}/releases").json()
        assert [r["version"] for r in releases] == list(range(1, 9))
        assert releases[-1]["current"] and releases[-1]["user"]["email"]


def test_a_change_costs_the_same_with_more_apps(platform: RunningPlatform) -> None:
    tag = uuid.uuid4().hex[:4]
    with platform.client() as c:
        first = add_apps(c, tag, 1)[0]
        before = queries(c, "PATCH", f"/apps/{first}/config-vars", json={"X": "1"})
        created_before = queries(c, "POST", "/apps", json={"name": f"qb-{tag}-a"})
        add_apps(c, tag, 6)
        after = queries(c, "PATCH", f"/apps/{first}/config-vars", json={"X": "2"})
        created_after = queries(c, "POST", "/apps", json={"name": f"qb-{tag}-b"})
        assert (before, created_before) == (after, created_after)
