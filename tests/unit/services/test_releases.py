"""Config vars and releases: descriptions, limits, rollback, slug deploys."""

from __future__ import annotations

import pytest
from service_fakes import Harness

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.views import UserView


def test_config_changes_make_releases(harness: Harness, owner: UserView) -> None:
    r = harness.services.releases
    app = harness.services.apps.create(owner, "cfg")
    config, v2 = r.update_config(owner, app.id, {"FOO": "1", "BAR": 2, "ON": True})
    assert config == {"BAR": "2", "FOO": "1", "ON": "true"}
    assert v2 is not None and v2.description == "Set FOO, BAR, ON config vars"
    assert v2.version == 2 and v2.current and v2.user_email == "owner@example.com"
    _, v3 = r.update_config(owner, app.id, {"FOO": None, "BAR": "3"})
    assert v3 is not None and v3.description == "Set BAR config vars and Remove FOO config vars"
    _, none = r.update_config(owner, app.id, {"BAR": "3"})  # unchanged: no release
    assert none is None
    assert r.release_config(app.id, "v2") == {"BAR": "2", "FOO": "1", "ON": "true"}
    listed = r.list(app.id)
    assert [(x.version, x.current) for x in listed] == [(1, False), (2, False), (3, True)]


def test_bad_config_is_refused_whole(harness: Harness, owner: UserView) -> None:
    r = harness.services.releases
    app = harness.services.apps.create(owner, "cfg-bad")
    for bad in ({"1X": "a"}, {"A B": "a"}, {"A": {"nested": 1}}, ["A"]):
        with pytest.raises(InvalidParams):
            r.update_config(owner, app.id, bad)
    with pytest.raises(InvalidParams, match="64 kB"):
        r.update_config(owner, app.id, {"BIG": "x" * 70000})
    assert r.config(app.id) == {}
    assert [x.version for x in r.list(app.id)] == [1]


def test_rollback_restores_code_and_config(harness: Harness, owner: UserView) -> None:
    r = harness.services.releases
    app = harness.services.apps.create(owner, "rolled")
    r.update_config(owner, app.id, {"A": "1"})
    r.update_config(owner, app.id, {"A": "2", "B": "x"})
    back = r.rollback(owner, app.id, "v2")
    assert back.description == "Rollback to v2" and back.version == 4
    assert r.config(app.id) == {"A": "1"}
    with pytest.raises(NotFound):
        r.rollback(owner, app.id, "v42")


def test_only_the_apps_own_slugs_deploy(harness: Harness, owner: UserView) -> None:
    r = harness.services.releases
    mine = harness.services.apps.create(owner, "mine")
    theirs = harness.services.apps.create(owner, "theirs")
    slug = r.create_slug(theirs.id, {"web": "run"}, commit="abcdef123")
    with pytest.raises(NotFound, match="slug"):
        r.deploy_slug(owner, mine.id, slug.id)
    rel = r.deploy_slug(owner, theirs.id, slug.id)
    assert rel.description == "Deploy abcdef1" and rel.slug_id == slug.id
    with pytest.raises(InvalidParams, match="process type"):
        r.create_slug(mine.id, {"bad name": "x"})
