"""`spruce up --api-workers 2`: worker processes answer the API's store-only reads and hand
the rest to the main process (issue 23), on SQLite and PostgreSQL.

Each request here opens a connection of its own (no keep-alive), so the kernel hands them
to whichever worker accepts first, as it does with many clients.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ACCEPT, PostgresServer, RunningPlatform, start_platform, wait_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    env: dict[str, str] = {}
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        env["SPRUCE_DATABASE_URL"] = server.create_database()
    p = start_platform(
        tmp_path_factory.mktemp(f"api-workers-{request.param}"),
        extra_env=env,
        extra_args=["--api-workers", "2"],
    )
    yield p
    running = workers(p)
    assert p.stop() == 0
    # `spruce up` stopped its workers before it exited
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]


def workers(p: RunningPlatform) -> set[int]:
    """The platform's read worker processes, from /proc."""
    found = set()
    for task in Path(f"/proc/{p.proc.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spruce.api.read_worker" in cmdline:
                found.add(int(pid))
    return found


def call(
    p: RunningPlatform, method: str, path: str, key: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {"Accept": ACCEPT, "Authorization": f"Bearer {key or p.api_key}"}
    headers.update(kw.pop("headers", {}))
    with httpx.Client(base_url=p.api_url, timeout=30) as c:  # a connection of its own
        return c.request(method, path, headers=headers, **kw)


@pytest.fixture(scope="module")
def app(platform: RunningPlatform) -> str:
    name = f"aw-{uuid.uuid4().hex[:8]}"
    assert call(platform, "POST", "/apps", json={"name": name}).status_code == 201
    return name


def test_reads_are_answered_by_the_workers_and_writes_by_the_main_process(
    platform: RunningPlatform, app: str
) -> None:
    pids = wait_for(lambda: workers(platform) if len(workers(platform)) == 2 else None)
    answered = set()
    for _ in range(12):
        r = call(platform, "GET", f"/apps/{app}", headers={"Request-Id": "a" * 24})
        assert r.status_code == 200 and r.json()["name"] == app
        assert r.headers["Request-Id"].startswith("a" * 24 + ",")
        answered.add(int(r.headers["Spruce-Api-Worker"]))
    assert answered <= pids and answered
    assert os.getpid() not in answered and platform.proc.pid not in answered
    # a write goes to the main process, its Request-Id and rate limit headers intact
    w = call(
        platform,
        "PATCH",
        f"/apps/{app}/config-vars",
        json={"X": "1"},
        headers={"Request-Id": "b" * 24},
    )
    assert w.status_code == 200 and "Spruce-Api-Worker" not in w.headers
    assert w.headers["Request-Id"].startswith("b" * 24 + ",") and "RateLimit-Remaining" in w.headers
    # reads that need the main process's memory (the dyno manager) are forwarded too
    d = call(platform, "GET", f"/apps/{app}/dynos")
    assert d.status_code == 200 and d.json() == [] and "Spruce-Api-Worker" not in d.headers
    # Range and Heroku's errors come out the same from a worker
    r = call(platform, "GET", f"/apps/{app}/releases", headers={"Range": "version ..; max=1"})
    assert r.status_code == 206 and r.headers["Next-Range"].startswith("version ]1..")
    assert "Spruce-Api-Worker" in r.headers
    missing = call(platform, "GET", "/apps/no-such-app-here")
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"
    assert "Spruce-Api-Worker" in missing.headers


def test_bodies_and_streams_go_through_both_ways(platform: RunningPlatform, app: str) -> None:
    # a large request body (40 kB of config vars) reaches the main process whole
    big = {f"BIG_{i}": "x" * 1000 for i in range(40)}
    r = call(
        platform, "PATCH", f"/apps/{app}/config-vars", json=big, headers={"Expect": "100-continue"}
    )
    assert r.status_code == 200 and all(r.json()[k] == v for k, v in big.items())
    assert call(platform, "GET", f"/apps/{app}/config-vars").json()["BIG_39"] == "x" * 1000
    unset = call(platform, "PATCH", f"/apps/{app}/config-vars", json=dict.fromkeys(big))
    assert unset.status_code == 200 and "BIG_0" not in unset.json()
    # a log session's stream, served by the main process, streamed back through a worker
    session = call(platform, "POST", f"/apps/{app}/log-sessions", json={"lines": 10})
    assert session.status_code == 201, session.text
    with httpx.stream("GET", session.json()["logplex_url"], timeout=30) as stream:
        assert stream.status_code == 200 and "Spruce-Api-Worker" not in stream.headers
        text = b"".join(stream.iter_raw()).decode()
    assert "Set BIG_0" in text  # the release of the big config change, from the app's log


def test_a_write_is_visible_to_the_next_read_whichever_process_answers(
    platform: RunningPlatform, app: str
) -> None:
    def latest() -> httpx.Response:
        desc = {"Range": "version ..; order=desc, max=1"}
        return call(platform, "GET", f"/apps/{app}/releases", headers=desc)

    first = latest().json()[0]["version"]
    for i in range(15):
        assert (
            call(platform, "PATCH", f"/apps/{app}/config-vars", json={"N": str(i)}).status_code
            == 200
        )
        r = call(platform, "GET", f"/apps/{app}/config-vars")
        assert "Spruce-Api-Worker" in r.headers and r.json()["N"] == str(i)
        # a new release each time, which the next listing shows
        r = latest()
        assert "Spruce-Api-Worker" in r.headers
        assert r.json()[0]["version"] == first + i + 1
        assert r.json()[0]["description"] == "Set N config vars"


def test_the_rate_limit_is_counted_once_across_processes(
    platform: RunningPlatform, app: str
) -> None:
    seen: list[int] = []
    by: set[str] = set()
    started = time.monotonic()
    for i in range(24):
        if i % 4 == 3:
            r = call(platform, "PATCH", f"/apps/{app}/config-vars", json={"R": str(i)})
        else:
            r = call(platform, "GET", f"/apps/{app}")
        assert r.status_code == 200
        by.add(r.headers.get("Spruce-Api-Worker", "main"))
        seen.append(int(r.headers["RateLimit-Remaining"]))
    elapsed = time.monotonic() - started
    # One budget: each request took one token whoever answered it (a count per process
    # would start again from the top in each). The bucket refills 1.25 tokens a second.
    assert len(by) >= 2, by
    assert all(a - 1 <= b <= a for a, b in zip(seen, seen[1:], strict=False)), seen
    assert seen[0] - seen[-1] >= len(seen) - 1 - (elapsed * 1.25 + 1), (seen, elapsed)


def test_a_revoked_key_is_refused_by_every_worker_at_once(
    platform: RunningPlatform, app: str
) -> None:
    created = call(platform, "POST", "/oauth/authorizations", json={"description": "aw"})
    assert created.status_code == 201, created.text
    token = created.json()["access_token"]["token"]
    # every worker has verified (and remembers, for KEY_CACHE_SECONDS) the key; which
    # worker accepts a connection is the kernel's choice, so ask until both have answered
    answered: set[str] = set()
    for _ in range(200):
        r = call(platform, "GET", f"/apps/{app}", key=token)
        assert r.status_code == 200
        answered.add(r.headers["Spruce-Api-Worker"])
        if len(answered) == 2:
            break
    assert len(answered) == 2, answered
    revoke = call(platform, "DELETE", f"/oauth/authorizations/{created.json()['id']}")
    assert revoke.status_code == 200, revoke.text
    refused: set[str] = set()
    for _ in range(200):
        r = call(platform, "GET", f"/apps/{app}", key=token)
        assert r.status_code == 401 and r.json()["id"] == "unauthorized"
        refused.add(r.headers.get("Spruce-Api-Worker", "main"))
        if refused == answered:
            break
    assert refused == answered


def test_a_killed_worker_is_replaced(platform: RunningPlatform, app: str) -> None:
    before = wait_for(lambda: workers(platform) if len(workers(platform)) == 2 else None)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # the other worker keeps answering meanwhile
    for _ in range(5):
        assert call(platform, "GET", f"/apps/{app}").status_code == 200
    after = wait_for(
        lambda: (
            workers(platform)
            if len(workers(platform)) == 2 and victim not in workers(platform)
            else None
        ),
        what="a replacement worker",
    )
    replacement = (after - before).pop()
    wait_for(
        lambda: (
            call(platform, "GET", f"/apps/{app}").headers.get("Spruce-Api-Worker")
            == str(replacement)
        ),
        what="the replacement answering",
    )
