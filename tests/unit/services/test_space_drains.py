"""A space's log drain reaches every app of the space (services/logs.py)."""

from __future__ import annotations

import pytest
from service_fakes import Harness

from spruce.services.errors import Forbidden, InvalidParams, NotFound
from spruce.services.views import UserView


def test_space_drain_follows_the_space_s_apps(
    harness: Harness, owner: UserView, other: UserView
) -> None:
    s = harness.services
    s.teams.create(owner, "acme")
    s.teams.set_member(owner, "acme", other.email, "member")
    space = s.spaces.create(owner, "net", "acme")
    s.spaces.allocate(space.id)
    before = s.apps.create(owner, "before", placement=s.spaces.placement(owner, None, "net", None))
    with pytest.raises(NotFound, match="no log drain"):
        s.logs.space_drain(owner, "net")
    with pytest.raises(Forbidden):
        s.logs.set_space_drain(other, "net", "syslog://127.0.0.1:6514")
    with pytest.raises(InvalidParams):
        s.logs.set_space_drain(owner, "net", "ftp://example.com/x")
    drain = s.logs.set_space_drain(owner, "net", "syslog://127.0.0.1:6514")
    assert s.logs.space_drain(other, "net") == drain and drain.token == f"d.{drain.id}"
    after = s.apps.create(owner, "after", placement=s.spaces.placement(owner, None, "net", None))
    for app in (before, after):
        specs = harness.logs.drains[app.id]
        assert [(d.url, d.token, d.app_name) for d in specs] == [
            ("syslog://127.0.0.1:6514", drain.token, app.name)
        ]
    assert s.logs.drains(before.id) == []  # not one of the app's own drains
