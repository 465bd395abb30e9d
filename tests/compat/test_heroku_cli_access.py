"""Heroku's CLI v11, unchanged, on team app permissions: `access`, `access:add/update/remove`
with --permissions, `apps:lock/unlock/join/leave`, each enforced for a member's own CLI."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import httpx
import pytest
from compat_support import HerokuCLI
from support import RunningPlatform

pytestmark = pytest.mark.slow


def create_user(p: RunningPlatform, email: str) -> str:
    res = p.cli("users:create", email, "--home", str(p.home), check=True)
    return res.stdout.strip().splitlines()[-1].split("API key: ")[1]


def flat(text: str) -> str:
    """A CLI message on one line (the CLI wraps errors and marks them with ›)."""
    return " ".join(text.replace("›", " ").replace("⬢ ", "").split())


class Team:
    def __init__(self, heroku: HerokuCLI, platform: RunningPlatform, tmp: Path) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"hkacc-{tag}"
        self.email = f"hkacc-member-{tag}@example.com"
        key = create_user(platform, self.email)
        assert platform.client().post("/teams", json={"name": self.name}).status_code == 201
        heroku("members:add", self.email, "--team", self.name, "--role", "member")
        # The member's own Heroku CLI: the same install, another key and HOME.
        self.member = copy.copy(heroku)
        self.member.env = dict(heroku.env, HEROKU_API_KEY=key, HOME=str(tmp))
        (tmp / ".cache" / "heroku").mkdir(parents=True, exist_ok=True)
        (tmp / ".cache" / "heroku" / "terms-of-service").touch()


@pytest.fixture(scope="module")
def team(
    heroku: HerokuCLI, platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Team:
    return Team(heroku, platform, tmp_path_factory.mktemp("member-home"))


def test_permissions_per_member(
    heroku: HerokuCLI, platform: RunningPlatform, team: Team, tmp_path: Path
) -> None:
    app = "hkperm-" + uuid.uuid4().hex[:6]
    heroku("apps:create", app, "--team", team.name)
    member, email = team.member, team.email
    perms = platform.client().get("/teams/permissions").json()
    assert [p["name"] for p in perms] == ["deploy", "manage", "operate", "view"]

    # Not joined: a member views an unlocked team app, and nothing more.
    assert f"=== {app}" in flat(member("apps:info", "-a", app).stdout)
    res = member("config:set", "A=1", "-a", app, check=False)
    assert res.returncode != 0 and f"do not have the deploy permission on the app {app}" in flat(
        res.stderr
    )
    # The dashboard holds the same rule: the overview is view's, config values deploy's.
    dash = platform.endpoints["api_url"] + "/dashboard"
    with httpx.Client(follow_redirects=False) as browser:
        signed_in = browser.post(dash + "/login", data={"api_key": member.env["HEROKU_API_KEY"]})
        assert signed_in.status_code in (302, 303)
        assert browser.get(f"{dash}/apps/{app}").status_code == 200
        settings = browser.get(f"{dash}/apps/{app}/settings")
        assert settings.status_code == 403 and "deploy permission" in settings.text

    res = heroku("access:add", email, "-a", app, "--permissions", "deploy")
    assert f"Adding {email} access to the app {app} with deploy, view permissions... done" in (
        flat(res.stderr)
    )
    rows = [line.split() for line in heroku("access", "-a", app).stdout.splitlines()]
    assert [email, "member", "deploy,", "view"] in rows
    # deploy: config vars and git pushes; not scaling or restarting (operate's).
    assert "A: 1" in flat(member("config:set", "A=1", "-a", app).stdout)
    res = member("ps:restart", "-a", app, check=False)
    assert res.returncode != 0 and "do not have the operate permission" in flat(res.stderr)
    res = member("addons:create", "heroku-redis", "-a", app, check=False)
    assert res.returncode != 0 and "do not have the manage permission" in flat(res.stderr)

    res = heroku("access:update", email, "-a", app, "--permissions", "operate")
    assert f"Updating {email} in application {app} with operate,view permissions... done" in (
        flat(res.stderr)
    )
    rows = [line.split() for line in member("access", "-a", app).stdout.splitlines()]
    assert [email, "member", "operate,", "view"] in rows
    member("ps:restart", "-a", app)
    res = member("config:set", "B=2", "-a", app, check=False)
    assert res.returncode != 0 and "do not have the deploy permission" in flat(res.stderr)
    # A git push needs deploy too: refused before anything is sent.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "index.html").write_text("hi\n")
    member.git("init", "-q", "-b", "main", cwd=repo)
    member.git("add", "-A", cwd=repo)
    member.git("commit", "-q", "-m", "first", cwd=repo)
    member("git:remote", "-a", app, cwd=repo)
    push = member.git("push", "heroku", "main", cwd=repo, check=False)
    assert push.returncode != 0 and "do not have the deploy permission" in flat(push.stderr)
    # Managing access is manage's.
    res = member("access:update", email, "-a", app, "--permissions", "deploy,manage", check=False)
    assert res.returncode != 0 and "do not have the manage permission" in flat(res.stderr)

    res = heroku("access:remove", email, "-a", app)
    assert f"Removing {email} access from the app {app}... done" in flat(res.stderr)
    assert email not in heroku("access", "-a", app).stdout
    res = heroku("access:update", email, "-a", app, "--permissions", "deploy", check=False)
    assert res.returncode != 0 and f"Couldn't find that collaborator ({email})" in flat(res.stderr)
    heroku("apps:destroy", "-a", app, "--confirm", app)


def test_lock_join_leave(heroku: HerokuCLI, team: Team) -> None:
    app = "hklock-" + uuid.uuid4().hex[:6]
    heroku("apps:create", app, "--team", team.name)
    member, email = team.member, team.email

    assert f"Locking {app}... done" in flat(heroku("apps:lock", "-a", app).stderr)
    res = heroku("apps:lock", "-a", app, check=False)
    assert res.returncode != 0 and "This app is already locked." in flat(res.stderr)
    listing = member("apps", "--team", team.name).stdout
    assert f"{app} [locked]" in listing
    res = member("apps:info", "-a", app, check=False)
    assert res.returncode != 0 and f"You do not have access to the app {app}." in flat(res.stderr)
    res = member("apps:join", "-a", app, check=False)
    assert res.returncode != 0 and f"The app {app} is locked" in flat(res.stderr)

    assert f"Unlocking {app}... done" in flat(heroku("apps:unlock", "-a", app).stderr)
    res = heroku("apps:unlock", "-a", app, check=False)
    assert res.returncode != 0 and "This app is not locked." in flat(res.stderr)
    assert f"Joining {app}... done" in flat(member("apps:join", "-a", app).stderr)
    rows = [line.split() for line in heroku("access", "-a", app).stdout.splitlines()]
    assert [email, "member", "deploy,", "operate,", "view"] in rows
    # Joined before the lock: a locked app keeps its joined members.
    heroku("apps:lock", "-a", app)
    assert "A: 1" in flat(member("config:set", "A=1", "-a", app).stdout)
    assert f"Leaving {app}... done" in flat(member("apps:leave", "-a", app).stderr)
    res = member("config", "-a", app, check=False)
    assert res.returncode != 0 and f"You do not have access to the app {app}." in flat(res.stderr)
    heroku("apps:destroy", "-a", app, "--confirm", app)
