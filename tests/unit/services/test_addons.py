"""Add-ons: attachment names and config vars, one access rule, resolution, destruction."""

from __future__ import annotations

import pytest
from service_fakes import FakeProvider, Harness

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.views import UserView


async def test_provisioning_attaches_and_releases(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "with-kvs")
    first = await s.addons.create(owner, app.id, "heroku-redis:mini")
    assert first.config_var_names == ("REDIS_URL",) and first.app.name == "with-kvs"
    assert first.plan.name == "heroku-redis:mini" and first.state == "provisioned"
    second = await s.addons.create(owner, app.id, "heroku-redis")
    assert second.config_var_names == ("HEROKU_REDIS_AMBER_URL",)
    config = s.releases.config(app.id)
    assert config["REDIS_URL"].startswith("fake://") and "HEROKU_REDIS_AMBER_URL" in config
    latest = s.releases.list(app.id)[-1]
    assert latest.description == f"Attach HEROKU_REDIS_AMBER (@ref:{second.name})"
    assert latest.addon_plan_names == ("heroku-redis:mini",)
    with pytest.raises(InvalidParams, match="already exists"):
        await s.addons.create(owner, app.id, "heroku-redis", attachment_name="REDIS")
    with pytest.raises(InvalidParams, match="unknown plan"):
        await s.addons.create(owner, app.id, "heroku-redis:huge")


async def test_a_provider_failure_leaves_nothing(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "no-room")
    harness.providers[0].fail_provision = True
    with pytest.raises(InvalidParams, match="no room"):
        await s.addons.create(owner, app.id, "heroku-redis:mini")
    assert s.addons.for_app(app.id) == [] and s.releases.config(app.id) == {}


async def test_one_access_rule_for_add_ons(
    harness: Harness, owner: UserView, other: UserView
) -> None:
    s = harness.services
    app = s.apps.create(owner, "secret-app")
    addon = await s.addons.create(owner, app.id, "heroku-redis:mini")
    for lookup in (addon.name, addon.id):
        with pytest.raises(NotFound):
            s.addons.get(other, lookup)
    assert s.addons.visible(other) == [] and s.addons.attachments(other) == []
    with pytest.raises(NotFound):
        s.addons.resolve_addon(other, addon.name)
    # Sharing it with another app of the other user makes it visible to them.
    theirs = s.apps.create(other, "their-app")
    s.collaborators.add(owner, app.id, "other@example.com")
    s.addons.attach(other, s.addons.get(other, addon.name), theirs.id, "SHARED")
    s.collaborators.remove(owner, app.id, "other@example.com")
    assert s.addons.get(other, addon.name).id == addon.id
    assert [a.name for a in s.addons.attachments(other)] == ["SHARED"]


async def test_resolution_by_every_name_heroku_accepts(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "resolved")
    addon = await s.addons.create(owner, app.id, "heroku-redis:mini")
    for ident, app_id in (
        ("REDIS", app.id),
        ("REDIS_URL", app.id),
        ("redis", app.id),
        ("resolved::REDIS", None),
        (addon.name, None),
        (addon.id, None),
    ):
        found = s.addons.resolve_attachments(owner, ident, app_id)
        assert [a.name for a in found] == ["REDIS"], ident
        assert found[0].addon_plan.name == "heroku-redis:mini"
        assert found[0].config_var_names == ("REDIS_URL",)
    assert s.addons.resolve_addon(owner, "REDIS_URL", app.id).id == addon.id
    with pytest.raises(NotFound):
        s.addons.resolve_attachments(owner, "DATABASE_URL", app.id)


async def test_detach_and_destroy_rules(harness: Harness, owner: UserView) -> None:
    s = harness.services
    a = s.apps.create(owner, "owner-app")
    b = s.apps.create(owner, "user-app")
    addon = await s.addons.create(owner, a.id, "heroku-redis:mini")
    own = s.addons.attachment(owner, "REDIS", a.id)
    with pytest.raises(InvalidParams, match="only attachment"):
        s.addons.detach(owner, own)
    shared = s.addons.attach(owner, addon, b.id)
    assert shared.name == "REDIS" and shared.addon_app.name == "owner-app"
    with pytest.raises(InvalidParams, match="attached to other apps"):
        await s.addons.destroy(owner, addon)
    await s.addons.destroy(owner, addon, confirm=addon.name)
    assert "REDIS_URL" not in s.releases.config(b.id)
    assert s.releases.list(b.id)[-1].description == f"Detach REDIS (@ref:{addon.name})"
    assert harness.providers[0].addons == {}


async def test_replacing_an_attachment_needs_confirmation(
    harness: Harness, owner: UserView
) -> None:
    s = harness.services
    app = s.apps.create(owner, "promoted")
    first = await s.addons.create(owner, app.id, "heroku-redis:mini")
    other = await s.addons.create(owner, app.id, "heroku-redis:mini")
    with pytest.raises(InvalidParams, match="already exists"):
        s.addons.attach(owner, other, app.id, "REDIS")
    s.addons.attach(owner, other, app.id, "REDIS", confirm="promoted")
    assert s.addons.resolve_addon(owner, "REDIS", app.id).id == other.id
    config = s.releases.config(app.id)
    assert config["REDIS_URL"] == harness.providers[0].addons[other.id]["URL"]
    # the displaced add-on lost its only attachment: it keeps one under the next free name
    names = {a.name: a.addon.id for a in s.addons.attachments(owner, app_id=app.id)}
    kept = [n for n, a in names.items() if a == first.id]
    assert len(kept) == 1 and kept[0] not in ("REDIS", "HEROKU_REDIS_AMBER")
    assert config[f"{kept[0]}_URL"] == harness.providers[0].addons[first.id]["URL"]
    # confirming what is already there changes nothing (redis:promote run twice)
    versions = len(s.releases.list(app.id))
    s.addons.attach(owner, other, app.id, "REDIS", confirm="promoted")
    assert len(s.releases.list(app.id)) == versions


async def test_servers_start_past_a_failing_provider(tmp_path: object) -> None:
    from pathlib import Path

    from service_fakes import make_services

    from spruce.store.db import Store

    good, bad = FakeProvider(), FakeProvider("heroku-postgresql", "DATABASE", "HEROKU_POSTGRESQL")
    bad.fail_start = True
    h = make_services(Store.memory(), Path(str(tmp_path)), providers=[bad, good])
    user, _ = h.services.accounts.create_user("u@example.com")
    app = h.services.apps.create(user, "two-kinds")
    kvs = await h.services.addons.create(user, app.id, "heroku-redis:mini")
    failures = await h.services.addons.start_servers()
    assert failures == ["heroku-postgresql: the server binary is missing"]
    assert good.started == [kvs.id]
