"""git push real apps to a running platform and get their pages through the router."""

from __future__ import annotations

import uuid

import pytest
from e2e_support import WEB, Deployer
from support import RunningPlatform, wait_for


def new_app(p: RunningPlatform, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    assert p.client().post("/apps", json={"name": name}).status_code == 201
    return name


def test_release_phase_app_deploys_and_serves(platform: RunningPlatform, deploy: Deployer) -> None:
    app = new_app(platform, "rp")
    repo = deploy.repo(app, example="release-phase")
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    out = res.stderr
    assert "remote: -----> Procfile app detected" in out or "remote: -----> " in out
    assert "release phase: preparing version" in out  # release output streams into the push
    assert "Release command succeeded." in out and "Released v2" in out
    r = deploy.wait_serving(app, "release-phase app version")
    assert r.headers["via"] == "1.1 spruce"
    rels = platform.client().get(f"/apps/{app}/releases").json()
    assert (
        rels[-1]["description"].startswith("Deploy ")
        and rels[-1]["status"] == "succeeded"
        and rels[-1]["current"]
    )
    dynos = platform.client().get(f"/apps/{app}/dynos").json()
    assert [(d["name"], d["state"]) for d in dynos] == [("web.1", "up")]
    lines = wait_for(
        lambda: [
            ln
            for ln in deploy.logs(app, lines=200)
            if "heroku[router]" in ln and "status=200" in ln
        ],
        10,
        what="router line",
    )
    assert f"host={app}.localhost" in lines[0] and "dyno=web.1" in lines[0]
    log = "\n".join(deploy.logs(app, lines=200))
    assert "app[api]: Release v2 created by user" in log
    assert "heroku[web.1]: State changed from starting to up" in log
    assert "app[release." in log


@pytest.mark.parametrize(
    "example,expect",
    [
        ("static-site", "<"),
        ("node-web", "Hello"),
        ("python-web", "Hello"),
    ],
)
def test_examples_deploy(
    platform: RunningPlatform, deploy: Deployer, example: str, expect: str
) -> None:
    app = new_app(platform, example.split("-")[0])
    res = deploy.push(deploy.repo(app, example=example), app)
    assert res.returncode == 0, res.stderr[-3000:]
    r = deploy.wait_serving(app, expect, timeout=90)
    assert r.status_code == 200


def test_worker_only_app_has_no_web(platform: RunningPlatform, deploy: Deployer) -> None:
    app = new_app(platform, "wk")
    res = deploy.push(deploy.repo(app, example="worker-only"), app)
    assert res.returncode == 0, res.stderr
    api = platform.client()
    assert {f["type"]: f["quantity"] for f in api.get(f"/apps/{app}/formation").json()} == {
        "worker": 0
    }
    api.patch(f"/apps/{app}/formation", json={"updates": [{"type": "worker", "quantity": 1}]})
    wait_for(
        lambda: [
            d
            for d in api.get(f"/apps/{app}/dynos").json()
            if d["name"] == "worker.1" and d["state"] == "up"
        ],
        20,
        what="worker.1 up",
    )
    r = deploy.get(app)
    assert r.status_code == 503  # H14: no web processes running
    wait_for(
        lambda: any("code=H14" in ln for ln in deploy.logs(app, lines=50)), 10, what="H14 line"
    )


def test_failed_build_rejects_push_and_changes_nothing(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app = new_app(platform, "fb")
    repo = deploy.repo(app, example="release-phase")
    assert deploy.push(repo, app).returncode == 0
    deploy.wait_serving(app, "release-phase app version")
    before = platform.client().get(f"/apps/{app}/releases").json()
    # Nothing any buildpack recognises: the push is rejected with the list of what was tried.
    (repo / "Procfile").unlink()
    for f in ("web.py", "release.sh"):
        (repo / f).unlink()
    (repo / "README.txt").write_text("nothing to build\n")
    deploy.commit(repo, "break it")
    res = deploy.push(repo, app)
    assert res.returncode != 0
    assert "remote:" in res.stderr and "rejected" in res.stderr.lower()
    after = platform.client().get(f"/apps/{app}/releases").json()
    assert after == before
    assert deploy.get(app).text.startswith("release-phase app version")
    # The repository did not take the rejected commit.
    res2 = deploy.git(
        repo,
        "ls-remote",
        platform.endpoints["git_url"].replace("https://", f"https://git:{platform.api_key}@")
        + f"/{app}.git",
    )
    assert deploy.git(repo, "rev-parse", "HEAD~1").stdout.strip() in res2.stdout


def test_failed_release_phase_keeps_old_release(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app = new_app(platform, "frp")
    repo = deploy.repo(
        app, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="one")}
    )
    assert deploy.push(repo, app).returncode == 0
    deploy.wait_serving(app, "one")
    (repo / "Procfile").write_text("release: echo migrating; exit 3\nweb: python3 web.py\n")
    (repo / "web.py").write_text(WEB.format(text="two"))
    deploy.commit(repo, "bad release")
    res = deploy.push(repo, app)
    assert "Release command failed" in res.stderr and "migrating" in res.stderr
    rels = platform.client().get(f"/apps/{app}/releases").json()
    assert rels[-1]["status"] == "failed" and not rels[-1]["current"]
    assert [r for r in rels if r["current"]][0]["version"] == 2
    assert deploy.get(app).text == "one"


def test_rollback_brings_old_code_back(platform: RunningPlatform, deploy: Deployer) -> None:
    app = new_app(platform, "rb")
    repo = deploy.repo(
        app, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="first")}
    )
    assert deploy.push(repo, app).returncode == 0
    deploy.wait_serving(app, "first")
    (repo / "web.py").write_text(WEB.format(text="second"))
    deploy.commit(repo, "second")
    assert deploy.push(repo, app).returncode == 0
    deploy.wait_serving(app, "second")
    res = platform.cli("rollback", "v2", "-a", app, check=True)
    assert "done, v4" in res.stdout
    deploy.wait_serving(app, "first")
    # Another branch is kept without a build, as on Heroku.
    res = deploy.push(repo, app, branch="feature")
    assert res.returncode == 0 and "Pushed to non-main branch, skipping build." in res.stderr


def test_spruce_remote_pushes_without_setup(platform: RunningPlatform, deploy: Deployer) -> None:
    """`spruce apps:create` in a repository sets the remote, git's credential helper and CA."""
    import subprocess

    app = f"gr-{uuid.uuid4().hex[:6]}"
    repo = deploy.repo(
        app, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="remote")}
    )
    env = dict(
        platform.env,
        SPRUCE_API_URL=platform.api_url,
        SPRUCE_API_KEY=platform.api_key,
        XDG_CONFIG_HOME=str(repo.parent / f"{app}-config"),
        GIT_TERMINAL_PROMPT="0",
    )
    env.pop("GIT_SSL_CAINFO", None)
    res = platform.cli("apps:create", app, cwd=str(repo))
    assert "Git remote spruce added" in res.stdout, res.stderr
    push = subprocess.run(
        ["git", "push", "spruce", "main"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert push.returncode == 0, push.stderr
    assert "Released v2" in push.stderr
    deploy.wait_serving(app, "remote")


def test_old_slugs_are_pruned_and_config_changes_run_the_release_phase(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app = new_app(platform, "pr")
    files = {"Procfile": "release: echo phase-says-$FOO\nweb: python3 web.py\n"}
    repo = deploy.repo(app, files={**files, "web.py": WEB.format(text="v0")})
    assert deploy.push(repo, app).returncode == 0
    for i in range(1, 4):
        (repo / "web.py").write_text(WEB.format(text=f"v{i}"))
        deploy.commit(repo, f"v{i}")
        assert deploy.push(repo, app).returncode == 0
    deploy.wait_serving(app, "v3")
    api = platform.client()
    # The retention (3 releases here) keeps the newest slugs only: v2 cannot come back.
    r = api.post(
        f"/apps/{app}/releases", json={"release": api.get(f"/apps/{app}/releases/2").json()["id"]}
    )
    assert r.status_code == 422 and "pruned" in r.json()["message"]
    assert platform.cli("rollback", "v4", "-a", app, check=True).returncode == 0
    deploy.wait_serving(app, "v2")
    # A config change makes a release whose release phase runs before it goes live.
    api.patch(f"/apps/{app}/config-vars", json={"FOO": "configured"})
    latest = wait_for(
        lambda: (x := api.get(f"/apps/{app}/releases").json()[-1])["status"] == "succeeded" and x,
        30,
        what="release phase",
    )
    assert latest["description"] == "Set FOO config vars" and latest["current"]
    assert any("phase-says-configured" in ln for ln in deploy.logs(app, lines=300))
    out = platform.cli("releases:output", f"v{latest['version']}", "-a", app, check=True).stdout
    assert "phase-says-configured" in out
    log = "\n".join(deploy.logs(app, lines=300))
    assert "app[api]: Build started by user" in log and "app[api]: Build succeeded" in log
