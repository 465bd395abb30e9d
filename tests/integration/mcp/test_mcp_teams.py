"""Teams and Private Spaces through Spruce's MCP server: list_teams, list_private_spaces,
list_apps' team/space/personal filters and create_app in a team or a space, each checked
against the Platform API's state, and refused to a user outside the team as the API
refuses them."""

from __future__ import annotations

import uuid

from support import RunningPlatform, wait_for

from .clients import create_user, failed, http_session, ok, stdio_session


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def test_teams_spaces_and_their_apps(platform: RunningPlatform) -> None:
    api = platform.client()
    team, space = _name("mcpteam"), _name("mcpspace")
    api.post("/teams", json={"name": team}).raise_for_status()
    api.post("/spaces", json={"name": space, "team": team}).raise_for_status()
    wait_for(
        lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated",
        30,
        what="the space allocated",
    )
    mine, in_team, in_space = _name("mcp-own"), _name("mcp-team"), _name("mcp-space")
    api.post("/apps", json={"name": mine}).raise_for_status()

    async with http_session(platform) as s:
        teams = ok(await s.call_tool("list_teams", {}))
        assert {"name": team, "role": "admin"}.items() <= next(
            t for t in teams if t["name"] == team
        ).items()
        assert [t["id"] for t in teams if t["name"] == team] == [
            api.get(f"/teams/{team}").json()["id"]
        ]
        spaces = ok(await s.call_tool("list_private_spaces", {"json": True}))
        listed = next(sp for sp in spaces if sp["name"] == space)
        got = api.get(f"/spaces/{space}").json()
        assert listed["team"] == team and listed["id"] == got["id"]
        assert (listed["region"], listed["cidr"], listed["state"]) == (
            got["region"]["name"],
            got["cidr"],
            "allocated",
        )

        created = ok(await s.call_tool("create_app", {"app": in_team, "team": team}))
        assert created["team"] == team and created["space"] is None
        assert api.get(f"/apps/{in_team}").json()["team"]["name"] == team
        created = ok(await s.call_tool("create_app", {"app": in_space, "space": space}))
        assert created["space"] == space and created["team"] == team
        app = api.get(f"/apps/{in_space}").json()
        assert app["space"]["name"] == space and app["region"]["name"] == got["region"]["name"]

        names = lambda apps: {a["name"] for a in apps}  # noqa: E731
        assert names(ok(await s.call_tool("list_apps", {"team": team}))) == {in_team, in_space}
        assert names(ok(await s.call_tool("list_apps", {"space": space}))) == {in_space}
        personal = names(ok(await s.call_tool("list_apps", {"personal": True})))
        assert mine in personal and not personal & {in_team, in_space}
        assert {mine, in_team, in_space} <= names(ok(await s.call_tool("list_apps", {})))

        # Bad input: an error, and nothing made.
        assert "not both" in failed(await s.call_tool("list_apps", {"team": team, "space": space}))
        refused = _name("mcp-none")
        assert "space's region" in failed(
            await s.call_tool("create_app", {"app": refused, "space": space, "region": "eu"})
        )
        assert "Couldn't find that team" in failed(
            await s.call_tool("create_app", {"app": refused, "team": "no-such-team"})
        )
        assert api.get(f"/apps/{refused}").status_code == 404

    # Someone outside the team sees none of it, and is told what the API tells them.
    bob = create_user(platform, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    as_bob = platform.client(bob)
    team_refusal = as_bob.get(f"/teams/{team}").json()["message"]
    space_refusal = as_bob.get(f"/spaces/{space}").json()["message"]
    async with stdio_session(platform, bob) as s:
        assert team not in {t["name"] for t in ok(await s.call_tool("list_teams", {}))}
        assert space not in {sp["name"] for sp in ok(await s.call_tool("list_private_spaces", {}))}
        assert failed(await s.call_tool("list_apps", {"team": team})) == team_refusal
        assert failed(await s.call_tool("list_apps", {"space": space})) == space_refusal
        sneaky = _name("mcp-bob")
        assert failed(await s.call_tool("create_app", {"app": sneaky, "team": team})) == (
            team_refusal
        )
        assert (
            failed(await s.call_tool("get_app_info", {"app": in_team}))
            == (as_bob.get(f"/apps/{in_team}").json()["message"])
        )
    assert api.get(f"/apps/{sneaky}").status_code == 404
    assert {a["name"] for a in api.get(f"/teams/{team}/apps").json()} == {in_team, in_space}


async def test_a_view_only_member_may_look_but_not_change(platform: RunningPlatform) -> None:
    """The team app permissions hold through MCP as through the API: a member granted only
    `view` reads the app, and each tool that deploys, operates or manages is refused."""
    api = platform.client()
    team, app = _name("permteam"), _name("perm-app")
    api.post("/teams", json={"name": team}).raise_for_status()
    email = f"viewer-{uuid.uuid4().hex[:6]}@example.com"
    key = create_user(platform, email)
    api.post(f"/teams/{team}/members", json={"email": email, "role": "member"}).raise_for_status()
    api.post("/teams/apps", json={"name": app, "team": team}).raise_for_status()
    api.post(
        f"/teams/apps/{app}/collaborators", json={"user": email, "permissions": ["view"]}
    ).raise_for_status()
    api.patch(f"/apps/{app}/config-vars", json={"SECRET_TOKEN": "s3cr3t"}).raise_for_status()
    # What the API tells the viewer when they set a config var (deploy's): each tool says
    # the same, naming the permission it needs.
    refusal = platform.client(key).patch(f"/apps/{app}/config-vars", json={"X": "1"})
    assert refusal.status_code == 403
    async with http_session(platform, key) as s:
        assert ok(await s.call_tool("get_app_info", {"app": app}))
        ok(await s.call_tool("ps_list", {"app": app}))
        for tool, args, need in (
            ("config_get", {"app": app}, "deploy"),
            ("config_set", {"app": app, "vars": {"X": "1"}}, "deploy"),
            ("ps_scale", {"app": app, "dyno": "web=2"}, "operate"),
            ("ps_restart", {"app": app}, "operate"),
            ("maintenance_on", {"app": app}, "operate"),
            ("create_addon", {"app": app, "serviceAndPlan": "heroku-redis:mini"}, "manage"),
            ("add_domain", {"app": app, "hostname": "www.example.test"}, "manage"),
        ):
            message = failed(await s.call_tool(tool, args))
            assert "s3cr3t" not in message, tool
            assert message == refusal.json()["message"].replace("deploy", need), tool
    assert "X" not in api.get(f"/apps/{app}/config-vars").json()
    assert api.get(f"/apps/{app}").json()["maintenance"] is False
    assert api.get(f"/apps/{app}/addons").json() == []
