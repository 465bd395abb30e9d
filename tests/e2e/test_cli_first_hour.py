"""A newcomer's first hour with the spruce CLI against a real platform: git remotes that
push whatever the shell's CA settings, Heroku's verbs and aliases, one error style."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

from e2e_support import WEB, Deployer
from support import RunningPlatform

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # every root but Spruce's CA


def shell_env(platform: RunningPlatform, config: Path, **extra: str) -> dict[str, str]:
    """A user's shell: logged in through the environment, GIT_SSL_CAINFO exported."""
    env = dict(
        platform.env,
        SPRUCE_API_URL=platform.api_url,
        SPRUCE_API_KEY=platform.api_key,
        XDG_CONFIG_HOME=str(config),
        GIT_SSL_CAINFO=SYSTEM_BUNDLE,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
        GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com",
    )  # fmt: skip
    env.update(extra)
    return env


def run(
    env: dict[str, str], cwd: Path, *argv: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if check:
        assert res.returncode == 0, f"{argv} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def spruce(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(env, cwd, sys.executable, "-m", "spruce.cli.main", *args)


def app_repo(deploy: Deployer, text: str) -> tuple[str, Path]:
    app = f"fh-{uuid.uuid4().hex[:6]}"
    repo = deploy.repo(
        app, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text=text)}
    )
    return app, repo


def test_spruce_up_reports_each_part_and_its_start_time(platform: RunningPlatform) -> None:
    log = platform.log()
    lines = log.splitlines()
    assert lines[0] == f"Starting Spruce on {platform.home}...", log
    for part in ("store", "add-ons", "API", "git", "router", "dynos"):
        assert any(re.match(rf"  {part} +\S", line) for line in lines), (part, log)
    assert f"  store     SQLite {platform.home}/spruce.db" in lines
    assert "  router    1 worker process on http://127.0.0.1:" in log
    assert re.search(r"^Spruce is up in \d+\.\d s\.$", log, re.M), log


def test_https_remote_pushes_under_an_exported_git_ssl_cainfo(
    platform: RunningPlatform, deploy: Deployer, tmp_path: Path
) -> None:
    """The CA trap: GIT_SSL_CAINFO replaces any CA file git is configured with, but the
    remote's CA directory still counts, so the first push just works and nothing warns."""
    env = shell_env(platform, tmp_path / "config")
    app, repo = app_repo(deploy, "over https")
    created = spruce(env, repo, "create", app)  # Heroku's alias of apps:create
    assert created.returncode == 0, created.stderr
    assert "Git remote spruce added" in created.stdout
    assert created.stderr == "", created.stderr
    assert run(env, repo, "git", "remote", "get-url", "spruce").stdout.startswith("https://")
    push = run(env, repo, "git", "push", "spruce", "main")
    assert push.returncode == 0, push.stderr
    web_url = platform.client().get(f"/apps/{app}").json()["web_url"]
    assert f"remote:        {web_url} deployed to Spruce" in push.stderr
    deploy.wait_serving(app, "over https")
    # The plain-HTTP endpoint, typed by hand, needs no setup either (no password prompt).
    run(env, repo, "git", "commit", "-q", "--allow-empty", "-m", "again", check=True)
    plain = run(env, repo, "git", "push", f"{platform.api_url}/git/{app}.git", "main")
    assert plain.returncode == 0 and "Released v3" in plain.stderr, plain.stderr


def test_an_overriding_setting_gets_a_one_line_fix_that_works(
    platform: RunningPlatform, deploy: Deployer, tmp_path: Path
) -> None:
    """GIT_SSL_CAPATH replaces the CA directory too: the CLI notices (it asks the remote
    for its refs) and names the fix; following it (plain HTTP on the API port) pushes."""
    env = shell_env(platform, tmp_path / "config", GIT_SSL_CAPATH="/etc/ssl/certs")
    app, repo = app_repo(deploy, "over http")
    created = spruce(env, repo, "apps:create", app)
    assert created.returncode == 0, created.stderr
    assert "GIT_SSL_CAPATH overrides the CA that Spruce set for this remote" in created.stderr
    fix = f" ›   Warning: Fix: unset GIT_SSL_CAPATH, or push over plain HTTP: spruce git:remote -a {app} --http-git"
    assert fix in created.stderr.splitlines(), created.stderr
    assert run(env, repo, "git", "push", "spruce", "main").returncode != 0
    switched = spruce(env, repo, "git:remote", "-a", app, "--http-git")
    assert switched.returncode == 0 and switched.stderr == "", switched.stderr
    http_url = f"{platform.api_url}/git/{app}.git"
    assert f"set git remote spruce to {http_url}" in switched.stdout
    push = run(env, repo, "git", "push", "spruce", "main")
    assert push.returncode == 0, push.stderr  # the credential helper answers for /git/ too
    assert "deployed to Spruce" in push.stderr
    deploy.wait_serving(app, "over http")


def test_http_git_from_the_start(
    platform: RunningPlatform, deploy: Deployer, tmp_path: Path
) -> None:
    env = shell_env(platform, tmp_path / "config")
    app = f"fh-{uuid.uuid4().hex[:6]}"
    repo = deploy.repo(app, files={"Procfile": "web: sleep 600\n"})
    created = spruce(env, repo, "apps:create", app, "--http-git", "--remote", "plain")
    assert created.returncode == 0, created.stderr
    http_url = f"{platform.api_url}/git/{app}.git"
    assert created.stdout.splitlines()[-1].endswith(f"| {http_url}")
    push = run(env, repo, "git", "push", "plain", "main")
    assert push.returncode == 0 and "could not read Username" not in push.stderr, push.stderr


def test_heroku_verbs_and_aliases(platform: RunningPlatform, tmp_path: Path) -> None:
    env = shell_env(platform, tmp_path / "config")
    app = f"fh-{uuid.uuid4().hex[:6]}"
    assert spruce(env, tmp_path, "create", app, "--no-remote").returncode == 0
    web_url = platform.client().get(f"/apps/{app}").json()["web_url"]
    info = spruce(env, tmp_path, "info", "-a", app)
    assert info.returncode == 0 and f"=== {app}" in info.stdout
    # No browser here (stdout is not a terminal): `open` prints the URL alone.
    opened = spruce(env, tmp_path, "open", "-a", app)
    assert (opened.returncode, opened.stdout) == (0, web_url + "\n"), opened.stderr
    assert spruce(env, tmp_path, "open", "-a", app, "/health").stdout == web_url + "health\n"
    restart = spruce(env, tmp_path, "restart", "-a", app)
    assert restart.stdout == f"Restarting all dynos on ⬢ {app}... done\n", restart.stderr
    helped = spruce(env, tmp_path, "help", "apps:create")
    assert helped.returncode == 0 and "--http-git" in helped.stdout
    topic = spruce(env, tmp_path, "help", "addons")
    assert "addons:docs" in topic.stdout and "addons:open" in topic.stdout
    assert "Usage: spruce [OPTIONS] COMMAND" in spruce(env, tmp_path, "help").stdout

    created = spruce(env, tmp_path, "addons:create", "heroku-redis:mini", "-a", app)
    assert created.returncode == 0, created.stderr
    hint = re.search(r"Use (spruce addons:docs \S+) to view documentation", created.stdout)
    assert hint, created.stdout
    docs = spruce(env, tmp_path, *hint.group(1).split()[1:])  # the hint leads somewhere
    assert docs.returncode == 0, docs.stderr
    assert docs.stdout.strip().endswith("#key-value-store-heroku-redis") or (
        docs.stdout.strip() == "https://devcenter.heroku.com/articles/heroku-redis"
    )
    page = docs.stdout.strip().split("#")[0]
    if page.startswith("file://"):
        text = Path(page.removeprefix("file://")).read_text()
        assert "## Key-Value Store (`heroku-redis`)" in text
    listed = platform.client().get(f"/apps/{app}/addons").json()[0]
    # addons:open: the add-on's page in Spruce's dashboard (its web_url), printed without a
    # browser as `open` does
    dash = spruce(env, tmp_path, "addons:open", listed["name"], "-a", app)
    assert dash.returncode == 0, dash.stderr
    assert dash.stdout == listed["web_url"] + "\n"
    assert "/dashboard/addons/" in listed["web_url"]

    # logout forgets a stored login, and says what still logs you in.
    assert spruce(env, tmp_path, "login", "--home", str(platform.home)).returncode == 0
    stored = tmp_path / "config" / "spruce" / "credentials.json"
    assert stored.exists()
    out = spruce(env, tmp_path, "logout")
    assert out.returncode == 0 and out.stdout == "Logging out... done\n"
    assert "SPRUCE_API_KEY is set in this shell" in out.stderr
    assert not stored.exists()
    spruce(env, tmp_path, "apps:destroy", app, "--confirm", app)


def test_one_error_style(platform: RunningPlatform, tmp_path: Path) -> None:
    """Errors are ` ▸    message` on stderr, after the action line's `!`; exit 1, and 2 only
    for usage errors."""
    env = shell_env(platform, tmp_path / "config")
    app = f"fh-{uuid.uuid4().hex[:6]}"
    assert spruce(env, tmp_path, "create", app, "--no-remote").returncode == 0
    api = platform.client()
    slug = api.post(f"/apps/{app}/slugs", json={"process_types": {"web": "sleep 600"}}).json()
    api.post(f"/apps/{app}/releases", json={"slug": slug["id"]})

    res = spruce(env, tmp_path, "config:set", "A=1", "-a", "no-such-app")
    assert (res.returncode, res.stdout) == (1, "Setting A and restarting ⬢ no-such-app... !\n")
    assert res.stderr == " ▸    Couldn't find that app.\n"

    res = spruce(env, tmp_path, "ps:scale", "web=2", "-a", app)
    assert (res.returncode, res.stdout) == (1, f"Scaling dynos on ⬢ {app}... !\n")
    assert res.stderr.splitlines() == [
        " ▸    Cannot update to more than 1 basic size dynos per process type.",
        " ▸    To run 2 web dynos, pick a size that scales: spruce ps:scale web=2:standard-1x",
    ]
    assert spruce(env, tmp_path, "ps:scale", "web=2:standard-1x", "-a", app).returncode == 0

    res = spruce(env, tmp_path, "apps:info", "-a", "no-such-app")
    assert (res.returncode, res.stdout, res.stderr) == (1, "", " ▸    Couldn't find that app.\n")

    res = spruce(env, tmp_path, "crate", app)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.splitlines() == [
        " ▸    crate is not a spruce command.",
        " ▸    Did you mean create?",
        " ▸    Run spruce help for a list of available commands.",
    ]
    res = spruce(env, tmp_path, "apps:create", "--bogus")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        " ▸    No such option '--bogus'.",
        " ▸    See more help with: spruce apps:create --help",
    ]
    res = spruce(env, tmp_path, "config:get", "-a", app)
    assert res.returncode == 2 and res.stderr.startswith(" ▸    Missing argument 'KEYS...'.")

    # A var that is not set: an empty line and exit 0, as in Heroku's CLI (null in --json).
    res = spruce(env, tmp_path, "config:get", "NOPE", "-a", app)
    assert (res.returncode, res.stdout, res.stderr) == (0, "\n", "")
    res = spruce(env, tmp_path, "config:get", "NOPE", "--json", "-a", app)
    assert res.stdout.replace(" ", "").replace("\n", "") == '{"key":"NOPE","value":null}'
    spruce(env, tmp_path, "apps:destroy", app, "--confirm", app)


def test_git_remote_prints_no_warning(platform: RunningPlatform, tmp_path: Path) -> None:
    """`git:remote` has its own -r/--remote: no duplicate-option warnings any more."""
    env = shell_env(platform, tmp_path / "config")
    app = f"fh-{uuid.uuid4().hex[:6]}"
    run(env, tmp_path, "git", "init", "-q", "-b", "main", check=True)
    assert spruce(env, tmp_path, "create", app, "--no-remote").returncode == 0
    res = spruce(env, tmp_path, "git:remote", "-a", app, "-r", "production")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert run(env, tmp_path, "git", "remote").stdout.split() == ["production"]
    res = spruce(env, tmp_path, "git:remote", "--help")
    assert res.returncode == 0 and res.stderr == ""
    spruce(env, tmp_path, "apps:destroy", app, "--confirm", app)
