"""Heroku's CLI v11, unchanged, against Spruce's teams, spaces (with a generation) and
trusted IP ranges, and the answers Fir and Cedar apps give to commands the other has."""

from __future__ import annotations

import json
import uuid

import pytest
from compat_support import HerokuCLI
from support import RunningPlatform

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def team(platform: RunningPlatform) -> str:
    name = "hkteam-" + uuid.uuid4().hex[:6]
    assert platform.client().post("/teams", json={"name": name}).status_code == 201
    return name


def plain(text: str) -> str:
    return text.replace("⬡ ", "").replace("⬢ ", "")


def test_spaces_lifecycle_with_generations(heroku: HerokuCLI, team: str) -> None:
    space = "hkfir-" + uuid.uuid4().hex[:6]
    res = heroku("spaces:create", "--space", space, "--team", team, "--generation", "fir")
    assert f"Creating space {space} in team {team}... done" in plain(res.stderr)
    assert "Use heroku spaces:wait to track allocation." in res.stderr
    out = plain(res.stdout)
    assert out.splitlines()[0] == f"=== {space}"
    assert "Generation: fir" in out and "Team:       " + team in out

    res = heroku("spaces:wait", space, "-i", "1")
    assert f"Waiting for space {space} to allocate... done" in plain(res.stderr)
    info = plain(res.stdout)
    assert "State:        allocated" in info and "Outbound IPs: disabled" in info
    assert "Region:       Spruce local region" in info and "Generation:   fir" in info

    table = heroku("spaces", "--team", team).stdout
    header = table.splitlines()[0].split()
    assert header == ["Name", "Team", "Region", "State", "Generation", "Created", "At"]
    row = next(line.split() for line in table.splitlines() if space in line)
    assert row[:5] == [space, team, "local", "allocated", "fir"]
    as_json = json.loads(heroku("spaces:info", space, "--json").stdout)
    assert as_json["generation"]["name"] == "fir" and as_json["state"] == "allocated"

    # An app created in the space is a Fir team app (its stack is cnb).
    app = "hkspa-" + uuid.uuid4().hex[:6]
    res = heroku("apps:create", app, "--space", space)
    assert f"Creating {app} in space {space}... done" in plain(res.stderr)
    info = heroku("apps:info", "-a", app).stdout
    assert f"Space:          {space}" in info and "Stack:          cnb" in info
    assert "Region:         local" in info

    res = heroku("spaces:destroy", space, "--confirm", space, check=False)
    assert res.returncode != 0 and "still has 1 app(s)" in res.stderr
    heroku("apps:destroy", "-a", app, "--confirm", app)
    res = heroku("spaces:destroy", space, "--confirm", space)
    assert f"Destroying space {space}... done" in plain(res.stderr)
    assert "You do not have access to any spaces." in heroku("spaces", check=False).stderr or (
        space not in heroku("spaces", check=False).stdout
    )


def test_trusted_ips(heroku: HerokuCLI, team: str) -> None:
    space = "hkips-" + uuid.uuid4().hex[:6]
    heroku("spaces:create", space, "--team", team)
    out = heroku("spaces:trusted-ips", "--space", space).stdout
    lines = [line for line in out.splitlines() if line]
    assert lines[:2] == ["=== Trusted IP Ranges", "0.0.0.0/0"]
    assert "Trusted IP rules are applied to this space." in out
    res = heroku("spaces:trusted-ips:add", "192.0.2.0/24", "--space", space)
    assert f"Added 192.0.2.0/24 to trusted IP ranges on {space}" in plain(res.stdout)
    res = heroku("spaces:trusted-ips:add", "192.0.2.0/24", "--space", space, check=False)
    assert "A rule already exists for 192.0.2.0/24." in res.stderr
    heroku("spaces:trusted-ips:remove", "0.0.0.0/0", "--space", space)
    out = heroku("spaces:trusted-ips", "--space", space).stdout
    assert [line for line in out.splitlines() if line][1:] == [
        "192.0.2.0/24",
        "Trusted IP rules are applied to this space.",
    ]
    heroku("spaces:destroy", space, "--confirm", space)


def test_teams_and_members(heroku: HerokuCLI, platform: RunningPlatform, team: str) -> None:
    email = f"hkmember-{uuid.uuid4().hex[:6]}@example.com"
    platform.cli("users:create", email, "--home", str(platform.home), check=True)
    assert team in heroku("teams").stdout
    res = heroku("members:add", email, "--team", team, "--role", "member")
    assert f"Adding {email} to {team} as member... done" in plain(res.stderr)
    members = heroku("members", "--team", team).stdout
    assert any(email in line and "member" in line for line in members.splitlines())
    heroku("members:remove", email, "--team", team)
    assert email not in heroku("members", "--team", team).stdout


def test_fir_and_cedar_refusals(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    fir, cedar = "hkfr-" + uuid.uuid4().hex[:6], "hkcr-" + uuid.uuid4().hex[:6]
    api = platform.client()
    assert api.post("/apps", json={"name": fir, "generation": "fir"}).status_code == 201
    assert api.post("/apps", json={"name": cedar}).status_code == 201
    res = heroku("ps:exec", "-a", fir, check=False)
    assert res.returncode != 0
    assert "This command is unavailable for this app. Use heroku run:inside instead." in " ".join(
        res.stderr.replace("›", "").split()
    )
    res = heroku("run:inside", "web.1", "ls", "-a", cedar, check=False)
    assert res.returncode != 0
    assert "run:inside is only available for Fir-generation apps" in " ".join(
        res.stderr.replace("›", "").split()
    )


def test_space_log_drain(heroku: HerokuCLI, platform: RunningPlatform, team: str) -> None:
    """`spaces:drains:set/get`: the space's drain receives every app of the space's logs,
    apps made before the drain was set and after."""
    import socket
    import threading

    space = "hkdrn-" + uuid.uuid4().hex[:6]
    before, after = "hkdb-" + uuid.uuid4().hex[:6], "hkda-" + uuid.uuid4().hex[:6]
    heroku("spaces:create", space, "--team", team)
    heroku("spaces:wait", space, "-i", "1")
    res = heroku("spaces:drains:get", "-s", space, check=False)
    assert res.returncode != 0 and f"The space {space} has no log drain." in res.stderr
    heroku("apps:create", before, "--space", space)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"syslog://127.0.0.1:{listener.getsockname()[1]}"
    # One connection per app of the space (each app's lines go their own way), each with
    # the space drain's token as the syslog hostname.
    got: dict[int, bytes] = {}

    def read(n: int, conn: socket.socket) -> None:
        conn.settimeout(30)
        got[n] = b""
        try:
            while b"Set MARK config vars" not in got[n]:
                data = conn.recv(65536)
                if not data:
                    break
                got[n] += data
        except OSError:
            pass
        conn.close()

    def accept() -> None:
        listener.settimeout(30)
        readers = []
        for n in range(2):
            conn, _ = listener.accept()
            readers.append(threading.Thread(target=read, args=(n, conn), daemon=True))
            readers[-1].start()
        for r in readers:
            r.join(30)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    res = heroku("spaces:drains:set", url, "-s", space)
    assert f"Successfully set drain {url} for {space}." in plain(res.stdout)
    out = heroku("spaces:drains:get", "-s", space).stdout.strip()
    drain = json.loads(heroku("spaces:drains:get", "-s", space, "--json").stdout)
    assert out == f"{url} ({drain['token']})" and drain["token"].startswith("d.")
    res = heroku("spaces:drains:set", "ftp://example.com/x", "-s", space, check=False)
    assert res.returncode != 0
    heroku("apps:create", after, "--space", space)
    for app in (before, after):
        heroku("config:set", "MARK=1", "-a", app)  # an app[api] line each
    t.join(60)
    listener.close()
    assert len(got) == 2
    for data in got.values():
        assert b"Set MARK config vars" in data and f" {drain['token']} app api ".encode() in data
    # The space's drain is not one of an app's own drains.
    assert platform.client().get(f"/apps/{before}/log-drains").json() == []
    for app in (before, after):
        heroku("apps:destroy", "-a", app, "--confirm", app)
    heroku("spaces:destroy", space, "--confirm", space)
