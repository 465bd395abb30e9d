"""The store and services on SQLite and PostgreSQL: same code, same results, durable."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_fakes import make_services

from spruce.services import Services
from spruce.services.errors import Forbidden, InvalidParams, NotFound
from spruce.store.db import Store, migrate


def services(url: str, home: Path) -> Services:
    store = Store(url)
    migrate(store.engine)
    return make_services(store, home).services


def test_migrations_are_idempotent_and_state_survives_reopen(
    database_url: str, tmp_path: Path
) -> None:
    store = Store(database_url)
    migrate(store.engine)
    migrate(store.engine)
    svc = make_services(store, tmp_path).services
    owner, _ = svc.accounts.create_user("owner@example.com")
    app = svc.apps.create(owner, "durable-app")
    svc.releases.update_config(owner, app.id, {"FOO": "bar", "N": 3})
    store.dispose()

    again = services(database_url, tmp_path)
    app2 = again.apps.get(owner, "durable-app")
    assert app2.id == app.id
    assert again.releases.config(app.id) == {"FOO": "bar", "N": "3"}
    assert [r.version for r in again.releases.list(app.id)] == [1, 2]
    again.store.dispose()


def test_config_releases_and_rollback(database_url: str, tmp_path: Path) -> None:
    svc = services(database_url, tmp_path)
    u, _ = svc.accounts.create_user("dev@example.com")
    app = svc.apps.create(u, "cfg-app")
    _, r2 = svc.releases.update_config(u, app.id, {"FOO": "1", "BAR": "2"})
    assert r2 is not None and r2.description == "Set FOO, BAR config vars"
    _, r3 = svc.releases.update_config(u, app.id, {"FOO": None})
    assert r3 is not None and r3.description == "Remove FOO config vars"
    # Unchanged values make no release.
    _, none = svc.releases.update_config(u, app.id, {"BAR": "2"})
    assert none is None
    rb = svc.releases.rollback(u, app.id, "v2")
    assert rb.description == "Rollback to v2" and rb.version == 4
    assert svc.releases.config(app.id) == {"FOO": "1", "BAR": "2"}
    assert svc.releases.current(app.id).id == rb.id  # type: ignore[union-attr]
    with pytest.raises(InvalidParams):
        svc.releases.update_config(u, app.id, {"1BAD": "x"})
    with pytest.raises(NotFound):
        svc.releases.get(app.id, "v99")
    svc.store.dispose()


def test_formation_follows_slug_and_validates(database_url: str, tmp_path: Path) -> None:
    svc = services(database_url, tmp_path)
    u, _ = svc.accounts.create_user("f@example.com")
    app = svc.apps.create(u, "form-app")
    slug = svc.releases.create_slug(
        app.id, {"web": "python app.py", "worker": "python w.py", "release": "migrate"}
    )
    rel = svc.releases.create(u, app.id, "Deploy abc", slug_id=slug.id)
    assert rel.status == "pending"  # a release phase must pass first
    rows = {f.type: f.quantity for f in svc.formation.list(app.id)}
    # Heroku lists the release type too, at quantity 0 (releases:retry finds it there).
    assert rows == {"web": 1, "worker": 0, "release": 0}
    svc.formation.update(u, app.id, [{"type": "worker", "quantity": "1", "size": "standard-2x"}])
    assert {f.type: (f.quantity, f.size) for f in svc.formation.list(app.id)}["worker"] == (
        1,
        "standard-2x",
    )
    with pytest.raises(InvalidParams, match="more than 1 basic"):
        svc.formation.update(u, app.id, [{"type": "web", "quantity": 2}])
    with pytest.raises(NotFound, match="process type"):
        svc.formation.update(u, app.id, [{"type": "clock", "quantity": 1}])
    with pytest.raises(InvalidParams, match="size"):
        svc.formation.update(u, app.id, [{"type": "web", "size": "gigantic"}])
    # A failed batch changes nothing.
    with pytest.raises(NotFound):
        svc.formation.update(
            u, app.id, [{"type": "worker", "quantity": 0}, {"type": "nope", "quantity": 1}]
        )
    assert {f.type: f.quantity for f in svc.formation.list(app.id)}["worker"] == 1
    svc.store.dispose()


def test_access_between_users(database_url: str, tmp_path: Path) -> None:
    svc = services(database_url, tmp_path)
    alice, _ = svc.accounts.create_user("alice@example.com")
    bob, _ = svc.accounts.create_user("bob@example.com")
    app = svc.apps.create(alice, "alice-app")
    with pytest.raises(Forbidden):
        svc.apps.get(bob, "alice-app")
    assert [a.name for a in svc.apps.list_for(bob)] == []
    svc.collaborators.add(alice, app.id, "bob@example.com")
    assert svc.apps.get(bob, "alice-app").id == app.id
    with pytest.raises(Forbidden):
        svc.apps.get(bob, "alice-app", owner_only=True)
    with pytest.raises(Forbidden):
        svc.apps.update(bob, "alice-app", name="bobs-app")
    svc.store.dispose()


def test_app_names(database_url: str, tmp_path: Path) -> None:
    svc = services(database_url, tmp_path)
    u, _ = svc.accounts.create_user("n@example.com")
    generated = svc.apps.create(u)
    assert 3 <= len(generated.name) <= 30
    for bad in ("ab", "Upper", "1starts-with-digit", "ends-with-", "under_score", "x" * 31):
        with pytest.raises(InvalidParams):
            svc.apps.create(u, bad)
    svc.apps.create(u, "taken-name")
    with pytest.raises(InvalidParams, match="already taken"):
        svc.apps.create(u, "taken-name")
    svc.store.dispose()
