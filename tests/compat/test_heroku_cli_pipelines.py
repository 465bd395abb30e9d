"""Heroku's CLI v11, unchanged, on Spruce's pipelines and review apps: pipelines:create, add,
info, list, promote (across three apps, with the release phase's output streamed, and a
failing one), update, remove, rename, transfer, destroy; reviewapps:enable, create (a branch
pushed to Spruce's git), wait, disable, and stale review apps destroyed after their
pipeline's stale_days (a "day" shortened to one second here). `heroku pipelines:diff` is the
one that cannot work: it asks GitHub through a host the CLI cannot be pointed away from."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from compat_support import HerokuCLI
from conftest import TUNING
from support import REPO, RunningPlatform, start_platform, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    tuning = TUNING | {"review_apps": {"day_seconds": 1.0, "sweep_interval": 1.0}}
    p = start_platform(
        tmp_path_factory.mktemp("compat-pipes"), extra_env={"SPRUCE_TUNING": json.dumps(tuning)}
    )
    yield p
    p.stop()


def plain(text: str) -> str:
    return text.replace("⬢ ", "")


@pytest.fixture(scope="module")
def apps(heroku: HerokuCLI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three apps; the development one deployed (a release: line in its Procfile), with a
    second branch pushed for a review app (its app.json has a review environment)."""
    base = f"hp{uuid.uuid4().hex[:5]}"
    names = {"dev": f"{base}-dev", "stg": f"{base}-staging", "prod": f"{base}-prod"}
    repo = tmp_path_factory.mktemp("pipes") / "app"
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    (repo / "app.json").write_text(
        json.dumps(
            {
                "env": {"GREETING": {"value": "hello"}},
                "environments": {"review": {"env": {"REVIEW_MARK": {"value": "review-env"}}}},
            }
        )
    )
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    heroku("apps:create", names["dev"], cwd=repo)  # the repo's `heroku` remote
    heroku("apps:create", names["stg"], "--no-remote", cwd=repo)
    heroku("apps:create", names["prod"], "--no-remote", cwd=repo)
    push = heroku.git("push", "heroku", "main", cwd=repo)
    assert "Released v2" in push.stderr, push.stderr
    (repo / "VERSION").write_text("feature\n")
    heroku.git("commit", "-q", "-am", "feature", cwd=repo)
    heroku.git("push", "heroku", "HEAD:refs/heads/feature-x", cwd=repo)
    yield {"base": base, "repo": repo, **names}


def test_pipeline_lifecycle_and_promotion_across_three_apps(
    heroku: HerokuCLI, platform: RunningPlatform, apps: dict[str, Any]
) -> None:
    pipe, dev, stg, prod = apps["base"], apps["dev"], apps["stg"], apps["prod"]
    res = heroku("pipelines:create", pipe, "-a", dev, "-s", "development")
    err = plain(res.stderr)
    assert f"Creating {pipe} pipeline... done" in err
    assert f"Adding {dev} to {pipe} pipeline as development... done" in err
    res = heroku("pipelines:add", pipe, "-a", stg, "-s", "staging")
    assert f"Adding {stg} to {pipe} pipeline as staging... done" in plain(res.stderr)
    heroku("pipelines:add", pipe, "-a", prod, "-s", "production")

    assert pipe in heroku("pipelines").stdout.splitlines()
    assert re.search(rf"Pipeline:\s+{pipe} - development", heroku("apps:info", "-a", dev).stdout)
    info = plain(heroku("pipelines:info", pipe).stdout)
    assert info.splitlines()[0] == f"=== {pipe}"
    assert "owner: " in info
    rows = [line.split() for line in info.splitlines() if line.strip().startswith(apps["base"])]
    assert rows == [[dev, "development"], [stg, "staging"], [prod, "production"]]
    as_json = json.loads(heroku("pipelines:info", pipe, "--json").stdout)
    assert as_json["pipeline"]["generation"]["name"] == "cedar"
    assert {a["name"]: a["pipelineCoupling"]["stage"] for a in as_json["apps"]} == {
        dev: "development",
        stg: "staging",
        prod: "production",
    }

    # development -> staging: the release command runs on staging, its output streams.
    res = heroku("pipelines:promote", "-a", dev, timeout=240)
    out = plain(res.stdout)
    assert "Fetching app info..." in out and f"Fetching apps from {pipe}..." in out
    assert "Starting promotion to staging..." in out
    assert "Running release command..." in out
    assert "release phase: preparing version" in out and "Release command succeeded." in out
    assert "Promotion successful" in out and re.search(rf"{stg}:\s+succeeded", out)

    api = platform.client()
    dev_slug = _current_slug(api, dev)
    stg_rel = api.get(f"/apps/{stg}/releases", headers={"Range": "version ..; order=desc"})
    latest = stg_rel.json()[0]
    assert latest["status"] == "succeeded" and latest["description"].startswith(f"Promote {dev} v2")
    assert _current_slug(api, stg)["commit"] == dev_slug["commit"]
    assert _current_slug(api, stg)["id"] != dev_slug["id"]  # a copy, not the same slug

    # staging -> production: the third app gets the same code, again without a build.
    res = heroku("pipelines:promote", "-a", stg, timeout=240)
    out = plain(res.stdout)
    assert "Starting promotion to production..." in out and "release phase: done" in out
    assert re.search(rf"{prod}:\s+succeeded", out)
    assert _current_slug(api, prod)["commit"] == dev_slug["commit"]
    assert api.get(f"/apps/{prod}/builds").json() == []

    # a target whose release command fails: the promotion reports it, exit status 1
    heroku("config:set", "FAIL_RELEASE=1", "-a", prod)
    res = heroku("pipelines:promote", "-a", dev, "--to", f"{stg},{prod}", check=False, timeout=240)
    assert res.returncode == 1
    out = plain(res.stdout)
    assert f"Starting promotion to apps: {stg},{prod}..." in out
    assert "Promotion to some apps failed" in res.stderr
    assert re.search(rf"{stg}:\s+succeeded", out)
    assert re.search(rf"{prod}:\s+failed\n\s+The release command failed\.", out), out

    res = heroku("pipelines:promote", "-a", prod, check=False)
    assert f"Cannot promote {prod} from 'production' stage" in res.stderr
    res = heroku("pipelines:promote", "-a", dev, "--to", dev, check=False)
    assert "Cannot promote from an app to itself" in res.stderr

    # pipelines:diff needs GitHub through kolkrabbi.heroku.com: it cannot work here.
    try:
        assert heroku("pipelines:diff", "-a", dev, check=False, timeout=60).returncode != 0
    except subprocess.TimeoutExpired:
        pass  # no route to that host at all: it cannot work either

    res = heroku("pipelines:update", "-a", stg, "-s", "development")
    assert f"Changing {stg} to development... done" in plain(res.stderr)
    assert api.get(f"/apps/{stg}/pipeline-couplings").json()["stage"] == "development"
    res = heroku("pipelines:remove", "-a", stg)
    assert f"Removing {stg}... done" in plain(res.stderr)
    assert api.get(f"/apps/{stg}/pipeline-couplings").status_code == 404

    renamed = f"{pipe}-r"
    res = heroku("pipelines:rename", pipe, renamed)
    assert f"Renaming {pipe} pipeline to {renamed}... done" in plain(res.stderr)
    team = f"{pipe}-team"
    assert api.post("/teams", json={"name": team}).status_code == 201
    res = heroku("pipelines:transfer", team, "-p", renamed, "--confirm", renamed)
    assert f"Transferring {renamed} pipeline to the {team} team... done" in res.stderr
    owner = api.get(f"/pipelines/{renamed}").json()["owner"]
    assert owner == {"id": api.get(f"/teams/{team}").json()["id"], "type": "team"}
    assert f"owner: {team} (team)" in heroku("pipelines:info", renamed).stdout
    apps["pipeline"], apps["team"] = renamed, team


def _current_slug(api: Any, app: str) -> dict[str, Any]:
    releases = api.get(f"/apps/{app}/releases").json()
    current = next(r for r in reversed(releases) if r["status"] == "succeeded" and r["slug"])
    return api.get(f"/apps/{app}/slugs/{current['slug']['id']}").json()  # type: ignore[no-any-return]


def test_review_apps_from_a_pushed_branch(
    heroku: HerokuCLI, platform: RunningPlatform, apps: dict[str, Any]
) -> None:
    pipe = apps.get("pipeline") or pytest.skip("needs the pipeline of the test above")
    api = platform.client()
    res = heroku("reviewapps:enable", "-p", pipe)
    assert "Configuring pipeline... done" in res.stderr
    config = api.get(f"/pipelines/{pipe}/review-app-config").json()
    assert config["repo"]["name"] == apps["dev"] and config["destroy_stale_apps"] is False

    res = heroku("reviewapps:create", "-b", "no-such-branch", "-p", pipe, check=False)
    assert "doesn't exist" in res.stderr

    # The review stage's config vars reach every review app (app.json's values give way).
    pipeline_id = api.get(f"/pipelines/{pipe}").json()["id"]
    stage = f"/pipelines/{pipeline_id}/stage/review/config-vars"
    r = api.patch(stage, json={"STAGE_MARK": "from-stage", "REVIEW_MARK": "x", "GONE": "1"})
    assert r.status_code == 200 and r.json()["STAGE_MARK"] == "from-stage"
    assert "GONE" not in api.patch(stage, json={"GONE": None, "REVIEW_MARK": None}).json()
    assert api.get(stage).json() == {"STAGE_MARK": "from-stage"}
    assert api.patch(stage, json={"bad name": "1"}).status_code == 422
    assert api.get(f"/pipelines/{pipeline_id}/stage/nowhere/config-vars").status_code == 422

    res = heroku("reviewapps:create", "-b", "feature-x", "-p", pipe, "--wait", timeout=300)
    assert "Creating review app from feature-x" in res.stderr
    listed = api.get(f"/pipelines/{pipeline_id}/review-apps").json()
    assert [r["branch"] for r in listed] == ["feature-x"] and listed[0]["status"] == "created"
    review_app = listed[0]["app"]["name"]
    assert api.get(f"/apps/{review_app}").json()["team"]["name"] == apps["team"]
    config_vars = api.get(f"/apps/{review_app}/config-vars").json()
    assert config_vars["REVIEW_MARK"] == "review-env" and config_vars["GREETING"] == "hello"
    assert config_vars["STAGE_MARK"] == "from-stage"
    assert api.get(f"/apps/{review_app}/pipeline-couplings").json()["stage"] == "review"
    res = heroku("reviewapps:wait", review_app)
    assert res.returncode == 0
    assert api.get(f"/apps/{review_app}/review-app").json()["branch"] == "feature-x"

    # autodestroy: with a one-second "day", the review app is stale after five of them
    res = heroku("reviewapps:enable", "-p", pipe, "--autodestroy")
    assert "Enabling auto destroy..." in res.stdout
    assert api.get(f"/pipelines/{pipe}/review-app-config").json()["destroy_stale_apps"] is True
    wait_for(
        lambda: api.get(f"/apps/{review_app}").status_code == 404,
        60,
        interval=1,
        what="the stale review app's destroy",
    )
    assert api.get(f"/pipelines/{pipeline_id}/review-apps").json() == []

    res = heroku("reviewapps:disable", "-p", pipe)
    assert "Configuring pipeline... done" in res.stderr
    assert api.get(f"/pipelines/{pipe}/review-app-config").status_code == 404
    res = heroku("pipelines:destroy", pipe)
    assert f"Destroying {pipe} pipeline... done" in res.stderr
    assert api.get(f"/apps/{apps['dev']}/pipeline-couplings").status_code == 404


def test_ci_config_is_the_test_stage_s(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    """`heroku ci:config*`: the pipeline's `test` stage config vars."""
    pipe = "hkci-" + uuid.uuid4().hex[:6]
    app = "hkcia-" + uuid.uuid4().hex[:6]
    heroku("apps:create", app)
    heroku("pipelines:create", pipe, "-a", app, "-s", "staging")
    res = heroku("ci:config:set", "-p", pipe, "RAILS_ENV=test", "TOKEN=abc")
    assert "Setting RAILS_ENV, TOKEN... done" in res.stderr
    assert "RAILS_ENV: test" in res.stdout
    out = heroku("ci:config", "-p", pipe).stdout
    assert f"=== {pipe} test config vars" in out and "TOKEN:     abc" in out
    assert heroku("ci:config:get", "-p", pipe, "TOKEN").stdout.strip() == "abc"
    assert heroku("ci:config", "-a", app, "--shell").stdout.split() == [
        "RAILS_ENV=test",
        "TOKEN=abc",
    ]
    res = heroku("ci:config:unset", "-p", pipe, "TOKEN")
    assert "Unsetting TOKEN... done" in res.stderr
    assert heroku("ci:config:get", "-p", pipe, "TOKEN").stdout.strip() == "undefined"
    pipeline_id = platform.client().get(f"/pipelines/{pipe}").json()["id"]
    review = platform.client().get(f"/pipelines/{pipeline_id}/stage/review/config-vars")
    assert review.json() == {}  # each stage its own
    heroku("pipelines:destroy", pipe)
    heroku("apps:destroy", "-a", app, "--confirm", app)


def test_github_only_commands_answer_as_for_an_account_without_github(
    heroku: HerokuCLI,
) -> None:
    """pipelines:connect and pipelines:setup link a GitHub repository through Heroku's own
    GitHub service (a host the CLI cannot be pointed elsewhere): they answer as Heroku does
    for an account without GitHub connected. A dead proxy keeps the key on this machine."""
    import copy

    cli = copy.copy(heroku)
    cli.env = dict(heroku.env, HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
    pipe = "hkgh-" + uuid.uuid4().hex[:6]
    res = cli("pipelines:connect", pipe, "-r", "someone/somerepo", check=False)
    assert res.returncode != 0 and "Account not connected to GitHub." in res.stderr
    res = cli("pipelines:setup", pipe, "someone/somerepo", "-y", check=False)
    assert res.returncode != 0 and "Account not connected to GitHub." in res.stderr
    assert pipe not in heroku("pipelines").stdout  # nothing made on the way
