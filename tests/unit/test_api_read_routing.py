"""Which API requests a read worker answers itself (spruce up --api-workers), and the state
every API process shares (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Match, Route

from spruce.api.app import create_api
from spruce.api.read_worker import READS, answers_here, read_routes
from spruce.api.workers import default_count
from spruce.services.errors import RateLimited
from spruce.services.shared import SharedLimits


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def concrete(template: str) -> str:
    return re.sub(
        r"\{[a-z]+\}", lambda m: "web" if m.group() == "{formation}" else "my-app", template
    )


async def _no_streams(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize(("template", "handler"), READS)
def test_a_worker_answers_the_read_the_main_process_would(template: str, handler: Any) -> None:
    routes = read_routes()
    path = concrete(template)
    assert answers_here(routes, scope("GET", path))
    # the main process's API would route the same request to the same handler
    api = create_api(None, "", _no_streams)  # type: ignore[arg-type]
    first = next(
        r
        for r in api.routes
        if isinstance(r, Route) and r.matches(scope("GET", path))[0] is Match.FULL
    )
    assert getattr(first.endpoint, "handler", None) is handler
    for method in ("POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"):
        assert not answers_here(routes, scope(method, path)), method


@pytest.mark.parametrize(
    "path",
    [
        "/apps/my-app/dynos",  # the dyno manager's memory
        "/apps/my-app/dynos/web.1",
        "/apps/my-app/log-sessions",
        "/apps/my-app/builds",
        "/apps/my-app/addons",
        "/apps/my-app/domains",
        "/apps/",  # Starlette's slash redirect is the main process's to give
        "/apps/my-app/releases/1/extra",
        "/mcp",
        "/git/my-app.git/info/refs",
        "/dashboard",
        "/streams/abc",
    ],
)
def test_everything_else_goes_to_the_main_process(path: str) -> None:
    assert not answers_here(read_routes(), scope("GET", path))


def test_websockets_and_lifespan_go_to_the_main_process() -> None:
    assert not answers_here(read_routes(), {**scope("GET", "/apps"), "type": "websocket"})


def test_workers_by_default_only_with_cores_to_spare() -> None:
    assert [default_count(n) for n in (1, 2, 3, 4, 8, 16, 64)] == [0, 0, 1, 2, 4, 4, 4]


def test_two_processes_share_one_budget_and_the_key_epoch(tmp_path: Path) -> None:
    main = SharedLimits.create(tmp_path / "limits", limit=5, window=3600.0)
    worker = SharedLimits(tmp_path / "limits", limit=5, window=3600.0)
    assert [main.take("u1"), worker.take("u1"), main.take("u1")] == [4, 3, 2]
    assert worker.remaining("u1") == 2 and worker.remaining("u2") == 5
    worker.take("u1"), main.take("u1")
    with pytest.raises(RateLimited):
        worker.take("u1")
    assert main.take("u2") == 4  # another user's bucket
    epoch = worker.key_epoch()
    main.bump_key_epoch()
    assert worker.key_epoch() == epoch + 1
    # a platform restart starts with full buckets
    again = SharedLimits.create(tmp_path / "limits", limit=5, window=3600.0)
    assert again.take("u1") == 4 and again.key_epoch() == 0


def test_buckets_refill_and_a_full_table_reuses_the_stalest(tmp_path: Path) -> None:
    limits = SharedLimits.create(tmp_path / "limits", limit=3600, window=1.0)  # 3600/s
    for _ in range(100):
        limits.take("busy")
    assert limits.remaining("busy") > 3500  # refilled within milliseconds
    many = [f"user-{i}" for i in range(20000)]  # more users than slots
    for user in many:
        assert limits.take(user) == 3599
    assert limits.take(many[-1]) >= 3598
