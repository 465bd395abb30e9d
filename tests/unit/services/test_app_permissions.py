"""Team app permissions (services/app_access.py): who holds view, deploy, operate, manage."""

from __future__ import annotations

import pytest
from service_fakes import Harness

from spruce.services.errors import Forbidden, InvalidParams, Unavailable
from spruce.services.spaces import Placement
from spruce.services.views import AppView, UserView


@pytest.fixture
def team_app(harness: Harness, owner: UserView, other: UserView) -> AppView:
    s = harness.services
    team = s.teams.create(owner, "acme")
    s.teams.set_member(owner, "acme", other.email, "member")
    return s.apps.create(owner, "team-app", placement=Placement(team.id, None, None, None))


def test_members_view_and_hold_what_they_are_given(
    harness: Harness, owner: UserView, other: UserView, team_app: AppView
) -> None:
    apps, collabs = harness.services.apps, harness.services.collaborators
    assert apps.get(other, team_app.id).id == team_app.id  # view, not joined
    for need in ("deploy", "operate", "manage"):
        with pytest.raises(Forbidden, match=f"the {need} permission"):
            apps.get(other, team_app.id, need=need)
    c = collabs.add(owner, team_app.id, other.email, ["deploy"])
    assert c.permissions == ("deploy", "view") and c.role == "member"
    apps.get(other, team_app.id, need="deploy")
    with pytest.raises(Forbidden, match="operate"):
        apps.get(other, team_app.id, need="operate")
    # Only manage changes permissions; then the member renames and destroys too.
    with pytest.raises(Forbidden, match="manage"):
        collabs.update(other, team_app.id, other.email, ["manage"])
    collabs.update(owner, team_app.id, other.email, ["manage"])
    apps.get(other, team_app.id, owner_only=True)
    with pytest.raises(InvalidParams, match="Unknown permission"):
        collabs.update(owner, team_app.id, other.email, ["root"])


def test_heroku_exec_needs_operate(
    harness: Harness, owner: UserView, other: UserView, team_app: AppView
) -> None:
    s = harness.services
    s.collaborators.add(owner, team_app.id, other.email, ["deploy"])
    with pytest.raises(Forbidden, match="operate"):
        s.heroku_exec.app_for(other, team_app.name)
    s.collaborators.update(owner, team_app.id, other.email, ["operate"])
    # Past the access rule: what stops it now is that Heroku Exec is not served here.
    with pytest.raises((Unavailable, InvalidParams)):
        s.heroku_exec.app_for(other, team_app.name)


def test_locked_apps_refuse_members_who_have_not_joined(
    harness: Harness, owner: UserView, other: UserView, team_app: AppView
) -> None:
    apps, collabs = harness.services.apps, harness.services.collaborators
    assert collabs.set_locked(owner, team_app.id, True).locked is True
    with pytest.raises(Forbidden, match="do not have access"):
        apps.get(other, team_app.id)
    assert [a.name for a in apps.list_for(other)] == []
    listed = collabs.team_apps(other, team_app.team.id)  # type: ignore[union-attr]
    assert [(t.app.name, t.locked, t.joined) for t in listed] == [("team-app", True, False)]
    with pytest.raises(Forbidden, match="is locked"):
        collabs.add(other, team_app.id, other.email)
    collabs.set_locked(owner, team_app.id, False)
    joined = collabs.add(other, team_app.id, other.email)
    assert joined.permissions == ("deploy", "operate", "view")
    collabs.set_locked(owner, team_app.id, True)
    apps.get(other, team_app.id, need="operate")  # joined members stay
    collabs.remove(other, team_app.id, other.email)  # leave
    with pytest.raises(Forbidden):
        apps.get(other, team_app.id)


def test_personal_apps_keep_their_rule(harness: Harness, owner: UserView, other: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "mine")
    s.collaborators.add(owner, app.id, other.email)
    s.apps.get(other, app.id, need="manage")  # collaborators hold every permission
    with pytest.raises(Forbidden, match="Only the owner"):
        s.apps.get(other, app.id, owner_only=True)
    with pytest.raises(InvalidParams, match="not owned by a team"):
        s.collaborators.update(owner, app.id, other.email, ["deploy"])
    with pytest.raises(InvalidParams, match="not a team app"):
        s.collaborators.set_locked(owner, app.id, True)


def test_promoting_onto_an_app_needs_deploy_there(
    harness: Harness, owner: UserView, other: UserView, team_app: AppView
) -> None:
    s = harness.services
    team = team_app.team.id  # type: ignore[union-attr]
    prod = s.apps.create(owner, "team-prod", placement=Placement(team, None, None, None))
    p = s.pipelines.create(owner, "flow", {"id": team, "type": "team"})
    s.pipelines.couple(owner, team_app.id, p.id, "staging")
    s.pipelines.couple(owner, prod.id, p.id, "production")
    body = {"pipeline": {"id": p.id}, "source": {"app": {"id": team_app.id}}}
    body["targets"] = [{"app": {"id": prod.id}}]
    with pytest.raises(Forbidden, match="deploy permission on the app team-prod"):
        s.promotions.check(other, body)
