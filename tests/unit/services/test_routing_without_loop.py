"""Services driven with no event loop running (a script seeding a store, a benchmark):
changes still reach the route table, at once instead of batched on the loop."""

from __future__ import annotations

from pathlib import Path

from service_fakes import FakeProvider, make_services

from spruce.store.db import Store


def test_changes_reach_the_table_without_a_running_loop(tmp_path: Path) -> None:
    h = make_services(Store.memory(), tmp_path / "home", providers=[FakeProvider()])
    s = h.services
    owner, _ = s.accounts.create_user("owner@example.com")
    app = s.apps.create(owner, "no-loop")
    assert app.id in h.routes.apps
    s.domains.add(owner, app.id, "www.no-loop.example.com")
    assert "www.no-loop.example.com" in h.routes.apps[app.id].hostnames
