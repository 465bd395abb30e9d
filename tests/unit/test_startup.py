"""What `spruce up` prints while it starts (spruce/startup.py)."""

from __future__ import annotations

from spruce.services.model import DynoInfo
from spruce.startup import (
    StartupReport,
    describe_addons,
    describe_dynos,
    describe_store,
    describe_workers,
)


def dyno(app: str, name: str, state: str) -> DynoInfo:
    return DynoInfo(
        id=name, app_id=app, name=name, type="web", state=state, size="basic", command="x",
        release_id="r", release_version=2, host="127.0.0.1", port=None, pid=None,
        created_at=0.0, updated_at=0.0,
    )  # fmt: skip


def test_store_lines_never_show_a_password() -> None:
    assert describe_store("sqlite:////home/me/.spruce/spruce.db") == (
        "SQLite /home/me/.spruce/spruce.db"
    )
    line = describe_store("postgresql+psycopg://spruce:s3cret@db.internal:5433/spruce")
    assert line == "PostgreSQL db.internal:5433/spruce" and "s3cret" not in line


def test_addons_workers_and_dynos() -> None:
    assert describe_addons({}) == "none yet"
    assert describe_addons({"heroku-redis": ["a", "b"], "heroku-postgresql": ["c"]}) == (
        "3 add-ons served (1 Postgres, 2 Key-Value Store)"
    )
    assert describe_workers(2) == "2 worker processes" and describe_workers(1) == (
        "1 worker process"
    )
    assert describe_dynos({}) == "none running yet"
    both = {"a": [dyno("a", "web.1", "up")], "b": [dyno("b", "web.1", "starting")], "c": []}
    assert describe_dynos(both) == "2 dynos of 2 apps brought back (1 up, the others starting)"
    assert describe_dynos({"a": [dyno("a", "web.1", "up")]}) == "1 dyno of 1 app brought back (up)"


def test_the_report_prints_each_part_and_the_total_time() -> None:
    lines: list[str] = []
    now = iter([100.0, 103.25])
    report = StartupReport(lines.append, clock=lambda: next(now))
    report.begin("/home/me/.spruce")
    report("store", "SQLite /home/me/.spruce/spruce.db")
    report("API", "http://127.0.0.1:5000")
    report.finish()
    assert lines == [
        "Starting Spruce on /home/me/.spruce...",
        "  store     SQLite /home/me/.spruce/spruce.db",
        "  API       http://127.0.0.1:5000",
        "Spruce is up in 3.2 s.",
    ]
