"""Apps: names, who may see and change which app, per-app settings."""

from __future__ import annotations

import pytest
from service_fakes import Harness

from spruce.services.errors import Conflict, Forbidden, InvalidParams, NotFound
from spruce.services.views import UserView


def test_names_are_heroku_s(harness: Harness, owner: UserView) -> None:
    apps = harness.services.apps
    generated = apps.create(owner)
    assert 3 <= len(generated.name) <= 30 and generated.name.count("-") == 2
    for bad in ("ab", "Upper", "1digit-first", "ends-with-", "under_score", "x" * 31):
        with pytest.raises(InvalidParams):
            apps.create(owner, bad)
    apps.create(owner, "taken")
    with pytest.raises(InvalidParams, match="already taken"):
        apps.create(owner, "taken")
    with pytest.raises(InvalidParams, match="region"):
        apps.create(owner, "somewhere", region="mars")
    with pytest.raises(InvalidParams, match="generation"):
        apps.create(owner, "gen-app", generation="bronze")


def test_a_new_app_has_v1_and_its_urls(harness: Harness, owner: UserView) -> None:
    app = harness.services.apps.create(owner, "demo")
    assert [r.version for r in harness.services.releases.list(app.id)] == [1]
    assert app.web_url == "http://demo.apps.test/"
    assert app.git_url == "https://git.test/demo.git"
    assert app.default_hostname == "demo.apps.test"
    assert app.owner_email == "owner@example.com"
    assert harness.logs.messages(app.id) == ["Initial release by user owner@example.com"]


def test_access_rules(harness: Harness, owner: UserView, other: UserView) -> None:
    apps = harness.services.apps
    app = apps.create(owner, "private-app")
    with pytest.raises(Forbidden):
        apps.get(other, "private-app")
    with pytest.raises(NotFound):
        apps.get(other, "no-such-app")
    assert apps.list_for(other) == []
    harness.services.collaborators.add(owner, app.id, "other@example.com")
    assert apps.get(other, "private-app").id == app.id
    assert [a.name for a in apps.list_for(other)] == ["private-app"]
    # Collaborators deploy and configure, but the owner alone renames, destroys, manages.
    with pytest.raises(Forbidden, match="Only the owner"):
        apps.update(other, app.id, name="stolen-name")
    with pytest.raises(Forbidden):
        apps.update_settings(other, app.id, {"boot_timeout": 5})
    with pytest.raises(Forbidden):
        harness.services.collaborators.add(other, app.id, "owner@example.com")
    assert apps.update(other, app.id, maintenance=True).maintenance is True
    with pytest.raises(Conflict):
        harness.services.collaborators.add(owner, app.id, "other@example.com")
    # A collaborator may leave by themselves.
    harness.services.collaborators.remove(other, app.id, "other@example.com")
    with pytest.raises(Forbidden):
        apps.get(other, app.id)


def test_the_operator_sees_every_app(harness: Harness, owner: UserView) -> None:
    operator, _ = harness.services.accounts.create_user("op@example.com", operator=True)
    app = harness.services.apps.create(owner, "someones-app")
    assert harness.services.apps.get(operator, app.id).name == "someones-app"
    assert [a.name for a in harness.services.apps.list_for(operator)] == ["someones-app"]


def test_settings_are_validated_once(harness: Harness, owner: UserView) -> None:
    apps = harness.services.apps
    app = apps.create(owner, "tuned")
    assert apps.update_settings(owner, app.id, {"boot_timeout": 5}).boot_timeout == 5
    assert apps.get(owner, app.id).settings.boot_timeout == 5
    with pytest.raises(InvalidParams, match="1 to 3600"):
        apps.update_settings(owner, app.id, {"boot_timeout": 0})
    assert apps.get(owner, app.id).settings.boot_timeout == 5  # a refused change loses nothing


def test_rename_keeps_the_id_and_moves_the_hostname(harness: Harness, owner: UserView) -> None:
    apps = harness.services.apps
    app = apps.create(owner, "old-name")
    renamed = apps.update(owner, app.id, name="new-name")
    assert renamed.id == app.id and renamed.default_hostname == "new-name.apps.test"
    assert harness.services.domains.hostnames(app.id) == ["new-name.apps.test"]
