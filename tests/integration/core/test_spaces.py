"""Teams, team apps, generations, regions and spaces through the Platform API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from support import PostgresServer, RunningPlatform, start_platform, wait_for
from test_access import create_user
from test_api_contract import check


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    env = {}
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        env["SPRUCE_DATABASE_URL"] = server.create_database()
    p = start_platform(
        tmp_path_factory.mktemp(f"spaces-{request.param}"),
        extra_env=env,
        extra_args=["--region", "local", "--region", "north=North machine room"],
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def people(platform: RunningPlatform) -> dict[str, httpx.Client]:
    tag = uuid.uuid4().hex[:6]
    return {
        role: platform.client(create_user(platform, f"{role}-{tag}@example.com"))
        for role in ("admin", "member", "outsider")
    }


def email_of(c: httpx.Client) -> str:
    return str(c.get("/account").json()["email"])


@pytest.fixture(scope="module")
def team(people: dict[str, httpx.Client]) -> str:
    name = "team-" + uuid.uuid4().hex[:6]
    r = people["admin"].post("/teams", json={"name": name})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "admin" and r.json()["type"] == "team"
    r = people["admin"].put(
        f"/teams/{name}/members", json={"email": email_of(people["member"]), "role": "member"}
    )
    assert r.status_code == 200, r.text
    return name


def wait_allocated(c: httpx.Client, space: str) -> dict[str, object]:
    def allocated() -> dict[str, object] | None:
        body = c.get(f"/spaces/{space}").json()
        return body if body["state"] == "allocated" else None

    return wait_for(allocated, 20, what="space allocated")


def test_teams_members_and_access(people: dict[str, httpx.Client], team: str) -> None:
    admin, member, outsider = people["admin"], people["member"], people["outsider"]
    assert [t["name"] for t in member.get("/teams").json()] == [team]
    assert member.get(f"/teams/{team}").json()["role"] == "member"
    assert outsider.get("/teams").json() == []
    r = outsider.get(f"/teams/{team}")
    assert r.status_code == 403 and r.json()["id"] == "forbidden"
    roles = {m["email"]: m["role"] for m in admin.get(f"/teams/{team}/members").json()}
    assert roles == {email_of(admin): "admin", email_of(member): "member"}
    # Only admins change membership; the last admin stays.
    r = member.put(f"/teams/{team}/members", json={"email": email_of(outsider), "role": "member"})
    assert r.status_code == 403
    r = admin.delete(f"/teams/{team}/members/{email_of(admin)}")
    assert r.status_code == 422 and "at least one admin" in r.json()["message"]
    r = admin.put(f"/teams/{team}/members", json={"email": email_of(member), "role": "owner"})
    assert r.status_code == 422
    assert admin.post("/teams", json={"name": team}).status_code == 409


def test_team_apps_are_the_members(people: dict[str, httpx.Client], team: str) -> None:
    admin, member, outsider = people["admin"], people["member"], people["outsider"]
    name = "tapp-" + uuid.uuid4().hex[:6]
    r = member.post("/teams/apps", json={"name": name, "team": team})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["team"]["name"] == team and body["space"] is None and body["joined"] is False
    assert body["generation"]["name"] == "cedar"
    # Another member sees and deploys it (config vars), an outsider is refused.
    assert admin.get(f"/apps/{name}").json()["team"]["name"] == team
    assert admin.patch(f"/apps/{name}/config-vars", json={"A": "1"}).status_code == 200
    assert name in [a["name"] for a in admin.get("/apps").json()]
    assert [a["name"] for a in admin.get(f"/teams/{team}/apps").json()] == [name]
    assert outsider.get(f"/apps/{name}").status_code == 403
    assert outsider.get(f"/teams/{team}/apps").status_code == 403
    assert name not in [a["name"] for a in outsider.get("/apps").json()]
    r = outsider.post("/teams/apps", json={"team": team})
    assert r.status_code == 403
    assert admin.delete(f"/apps/{name}").status_code == 200


def test_generations_and_regions(people: dict[str, httpx.Client], team: str) -> None:
    c = people["member"]
    gens = {g["name"]: g for g in c.get("/generations").json()}
    assert set(gens) == {"cedar", "fir"}
    assert "ps_exec" in gens["fir"]["unsupported_features"]
    assert c.get(f"/generations/{gens['fir']['id']}").json()["name"] == "fir"
    assert c.get("/generations/nope").status_code == 404
    assert len(c.get(f"/teams/{team}/available-generations").json()) == 2
    regions = {r["name"]: r for r in c.get("/regions").json()}
    assert {"us", "eu", "local", "north"} <= set(regions)
    assert regions["north"]["private_capable"] and not regions["us"]["private_capable"]
    assert regions["north"]["description"] == "North machine room"
    assert c.get("/regions/north").json()["id"] == regions["north"]["id"]


def test_space_lifecycle_and_fir_apps(people: dict[str, httpx.Client], team: str) -> None:
    admin, member, outsider = people["admin"], people["member"], people["outsider"]
    name = "fs-" + uuid.uuid4().hex[:6]
    r = admin.post("/spaces", json={"name": name})
    assert r.status_code == 422 and "team" in r.json()["message"]
    r = member.post("/spaces", json={"name": name, "team": team})
    assert r.status_code == 403  # creating a space is an admin's
    r = admin.post("/spaces", json={"name": name, "team": team, "region": "us"})
    assert r.status_code == 422 and "north" in r.json()["message"]
    r = admin.post("/spaces", json={"name": name, "team": team, "cidr": "8.8.0.0/16"})
    assert r.status_code == 422
    r = admin.post(
        "/spaces", json={"name": name, "team": team, "region": "north", "generation": "fir"}
    )
    assert r.status_code == 201, r.text
    sp = r.json()
    assert sp["state"] in ("allocating", "allocated")
    assert sp["generation"]["name"] == "fir" and sp["region"]["name"] == "north"
    assert sp["team"]["name"] == team and sp["organization"] == {"name": team}
    assert sp["cidr"] == "10.0.0.0/16" and sp["shield"] is False
    assert admin.post("/spaces", json={"name": name, "team": team}).status_code == 409
    # An app cannot go in before the space is allocated; after, it takes the space's
    # generation, region and team.
    wait_allocated(member, name)
    expanded = member.get(f"/spaces/{name}", headers={"Accept-Expansion": "region"}).json()
    assert expanded["region"]["description"] == "North machine room"
    assert [s["name"] for s in member.get("/spaces").json()] == [name]
    assert outsider.get("/spaces").json() == []
    assert outsider.get(f"/spaces/{name}").status_code == 403
    nat = member.get(f"/spaces/{name}/nat").json()
    assert nat["state"] == "disabled" and nat["sources"] == []

    app = "fa-" + uuid.uuid4().hex[:6]
    r = member.post("/teams/apps", json={"name": app, "space": name, "generation": "cedar"})
    assert r.status_code == 422 and "generation" in r.json()["message"]
    r = member.post("/teams/apps", json={"name": app, "space": name})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["generation"]["name"] == "fir" and body["stack"]["name"] == "cnb"
    assert body["region"]["name"] == "north" and body["space"]["name"] == name
    assert body["team"]["name"] == team
    sizes = {s["name"] for s in member.get(f"/apps/{app}/available-dyno-sizes").json()}
    assert "dyno-1c-0.5gb" in sizes and "standard-1x" not in sizes
    assert outsider.get(f"/apps/{app}").status_code == 403

    # Rename keeps the apps; destroy waits for them to go.
    renamed = name + "-b"
    assert admin.patch(f"/spaces/{name}", json={"name": renamed}).json()["name"] == renamed
    assert member.get(f"/apps/{app}").json()["space"]["name"] == renamed
    r = admin.delete(f"/spaces/{renamed}")
    assert r.status_code == 409 and "still has" in r.json()["message"]
    assert admin.delete(f"/apps/{app}").status_code == 200
    assert member.delete(f"/spaces/{renamed}").status_code == 403
    assert admin.delete(f"/spaces/{renamed}").status_code == 200
    assert admin.get(f"/spaces/{renamed}").status_code == 404


def test_rulesets(people: dict[str, httpx.Client], team: str) -> None:
    admin, member = people["admin"], people["member"]
    name = "rs-" + uuid.uuid4().hex[:6]
    assert admin.post("/spaces", json={"name": name, "team": team}).status_code == 201
    current = member.get(f"/spaces/{name}/inbound-ruleset").json()
    assert {"action": "allow", "source": "0.0.0.0/0"} in current["rules"]
    out = member.get(f"/spaces/{name}/outbound-ruleset").json()
    assert out["rules"][0]["protocol"] == "-1"
    rules = [{"action": "allow", "source": "192.0.2.0/24"}]
    r = member.put(f"/spaces/{name}/inbound-ruleset", json={"rules": rules})
    assert r.status_code == 403
    r = admin.put(f"/spaces/{name}/inbound-ruleset", json={"rules": rules})
    assert r.status_code == 200, r.text
    assert r.json()["rules"] == rules and r.json()["created_by"] == email_of(admin)
    history = member.get(f"/spaces/{name}/inbound-rulesets").json()
    assert len(history) == 2
    one = member.get(f"/spaces/{name}/inbound-rulesets/{history[0]['id']}").json()
    assert {"action": "allow", "source": "0.0.0.0/0"} in one["rules"]
    bad = [{"action": "maybe", "source": "10.0.0.0/8"}]
    assert admin.put(f"/spaces/{name}/inbound-ruleset", json={"rules": bad}).status_code == 422
    bad_out = [{"target": "10.0.0.0/8", "from_port": 90, "to_port": 80, "protocol": "tcp"}]
    r = admin.put(f"/spaces/{name}/outbound-ruleset", json={"rules": bad_out})
    assert r.status_code == 422
    good_out = [{"target": "10.0.0.0/8", "from_port": 80, "to_port": 443, "protocol": "tcp"}]
    r = admin.put(f"/spaces/{name}/outbound-ruleset", json={"rules": good_out})
    assert r.status_code == 200 and r.json()["rules"] == good_out
    assert admin.delete(f"/spaces/{name}").status_code == 200


def test_spruce_cli_spaces_teams_and_refusals(
    platform: RunningPlatform, people: dict[str, httpx.Client]
) -> None:
    tag = uuid.uuid4().hex[:6]
    team, space, app = f"clit-{tag}", f"clis-{tag}", f"clia-{tag}"
    cli = platform.cli
    assert f"Creating team {team}... done" in cli("teams:create", team, check=True).stderr
    member = email_of(people["member"])
    cli("members:add", member, "-t", team, "--role", "member", check=True)
    members = cli("members", "-t", team, check=True).stdout
    assert any(member in line and "member" in line for line in members.splitlines())

    res = cli("spaces:create", space, "--team", team, "--generation", "fir", check=True)
    assert f"Creating space ⬡ {space} in team {team}... done" in res.stderr
    assert res.stdout.splitlines()[0] == f"=== ⬡ {space}" and "Generation: fir" in res.stdout
    res = cli("spaces:wait", space, "-i", "1", check=True)
    assert "State:        allocated" in res.stdout and "Outbound IPs: disabled" in res.stdout
    listing = cli("spaces", "--team", team, check=True).stdout
    assert listing.split("\n")[0].split() == [
        "Name", "Team", "Region", "State", "Generation", "Created", "At"
    ]  # fmt: skip
    assert f"{space}" in listing and "fir" in listing

    res = cli("apps:create", app, "--space", space, "--no-remote", check=True)
    info = cli("apps:info", "-a", app, check=True).stdout
    assert f"Space:   {space}" in info and f"Team:    {team}" in info and "cnb" in info
    # Fir refuses Heroku Exec; run:inside needs a Fir app (the Cedar refusal).
    r = people["member"].get(f"/apps/{app}/features/runtime-heroku-exec")
    assert r.status_code == 422 and "run:inside" in r.json()["message"]
    cedar = f"clic-{tag}"
    assert (
        people["member"].post("/teams/apps", json={"name": cedar, "team": team}).status_code == 201
    )
    r = people["member"].post(f"/apps/{cedar}/dynos/web.1", json={"command": "ls"})
    assert r.status_code == 422 and "Fir-generation apps" in r.json()["message"]

    out = cli("trusted-ips:add", "192.0.2.0/24", "-s", space, check=True).stdout
    assert "Added 192.0.2.0/24" in out and "applied" in out
    assert "192.0.2.0/24" in cli("spaces:trusted-ips", "-s", space, check=True).stdout
    cli("outbound-rules:add", "-s", space, "--dest", "10.0.0.0/8", "--port", "80-443", check=True)
    rules = cli("outbound-rules", "-s", space, check=True).stdout
    assert "10.0.0.0/8" in rules and "80 - 443" in rules

    res = cli("spaces:destroy", space, "--confirm", space)
    assert res.returncode == 1 and "still has 1 app(s)" in res.stderr
    cli("apps:destroy", "-a", app, "--confirm", app, check=True)
    cli("apps:destroy", "-a", cedar, "--confirm", cedar, check=True)
    res = cli("spaces:destroy", space, "--confirm", space, check=True)
    assert f"Destroying space ⬡ {space}... done" in res.stderr
    res = cli("spaces:create", "--team", team)
    assert res.returncode == 1 and "Space name required." in res.stderr


def test_shapes_follow_the_schema(people: dict[str, httpx.Client], team: str) -> None:
    """Teams, members, team apps, spaces, NAT and rulesets as the Platform API schema has
    them (with v6's additions, which the schema allows)."""
    admin = people["admin"]
    check("team", admin.get(f"/teams/{team}").json())
    check("team", admin.get("/teams").json())
    check("team-member", admin.get(f"/teams/{team}/members").json())
    check("region", admin.get("/regions").json())
    name = "sh-" + uuid.uuid4().hex[:6]
    sp = admin.post("/spaces", json={"name": name, "team": team}).json()
    check("space", sp)
    wait_allocated(admin, name)
    check("space", admin.get("/spaces").json())
    check("space-nat", admin.get(f"/spaces/{name}/nat").json())
    check("inbound-ruleset", admin.get(f"/spaces/{name}/inbound-ruleset").json())
    check("outbound-ruleset", admin.get(f"/spaces/{name}/outbound-ruleset").json())
    app = admin.post("/teams/apps", json={"space": name}).json()
    check("team-app", app)
    check("app", admin.get(f"/apps/{app['name']}").json())
    assert admin.delete(f"/apps/{app['name']}").status_code == 200
    assert admin.delete(f"/spaces/{name}").status_code == 200
