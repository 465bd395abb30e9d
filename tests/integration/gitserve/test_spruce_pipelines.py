"""`spruce pipelines:*` and `reviewapps:*` against a real platform, with pipelines:diff
reading commits from Spruce's own git repositories (no GitHub anywhere)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import RunningPlatform, start_platform, wait_for

PROCFILE = "release: echo release-of-$MARK\nweb: python3 -m http.server $PORT\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    tuning = {"dynos": {"stop_grace": 3.0}}
    p = start_platform(
        tmp_path_factory.mktemp("pipes-home"), extra_env={"SPRUCE_TUNING": json.dumps(tuning)}
    )
    yield p
    p.stop()


def tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in files.items():
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Ann Dev",
        GIT_AUTHOR_EMAIL="ann@example.com",
        GIT_COMMITTER_NAME="Ann Dev",
        GIT_COMMITTER_EMAIL="ann@example.com",
    )
    res = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"git {' '.join(args)}: {res.stdout}{res.stderr}"
    return res.stdout + res.stderr


def push(p: RunningPlatform, repo: Path, app: str, ref: str = "main") -> str:
    url = p.api_url.replace("http://", f"http://git:{p.api_key}@") + f"/git/{app}.git"
    return git(repo, "push", url, f"HEAD:refs/heads/{ref}")


def test_pipelines_promote_and_diff_over_spruce_git(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    p, base = platform, f"sp{uuid.uuid4().hex[:6]}"
    dev, stg = f"{base}-dev", f"{base}-staging"
    for app in (dev, stg):
        p.cli("apps:create", app, "--no-remote", check=True)
    p.cli("config:set", "MARK=stg", "-a", stg, check=True)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Procfile").write_text(PROCFILE)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first version")
    assert "Released v2" in push(p, repo, dev)

    res = p.cli("pipelines:create", base, "-a", dev, "-s", "development", check=True)
    assert f"Creating {base} pipeline... done" in res.stderr
    assert f"Adding ⬢ {dev} to {base} pipeline as development... done" in res.stderr
    res = p.cli("pipelines:add", base, "-a", stg, check=True)
    assert "as staging... done" in res.stderr
    assert base in p.cli("pipelines", check=True).stdout.splitlines()
    info = p.cli("pipelines:info", base, check=True).stdout
    assert f"=== {base}" in info and "generation: cedar" in info
    rows = [line.split() for line in info.splitlines() if line.strip().startswith(base)]
    assert rows == [[dev, "development"], [stg, "staging"]]

    diff = p.cli("pipelines:diff", "-a", dev, check=True).stdout
    assert f"{dev} was not compared to {stg} as {stg} does not have any releases" in diff

    res = p.cli("pipelines:promote", "-a", dev, check=True)
    assert "Starting promotion to staging..." in res.stdout
    assert "Running release command..." in res.stdout and "release-of-stg" in res.stdout
    assert "Promotion successful" in res.stdout and f"{stg}: succeeded" in res.stdout
    assert (
        f"{dev} is up to date with {stg}" in p.cli("pipelines:diff", "-a", dev, check=True).stdout
    )

    (repo / "NOTES").write_text("two\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "second change")
    sha = git(repo, "rev-parse", "HEAD").strip()
    assert "Released v3" in push(p, repo, dev)
    diff = p.cli("pipelines:diff", "-a", dev, check=True).stdout
    assert f"=== {dev} is ahead of {stg} by 1 commit" in diff
    row = next(line for line in diff.splitlines() if sha[:7] in line)
    assert row.split()[0] == sha[:7] and "Ann Dev" in row and row.endswith("second change")

    res = p.cli("pipelines:diff", "-a", stg)
    assert res.returncode == 1 and "no downstream apps configured" in res.stderr
    res = p.cli("pipelines:promote", "-a", stg)
    assert res.returncode == 1 and "no downstream apps in production stage" in res.stderr

    # review apps from a branch pushed to the development app's repository
    (repo / "app.json").write_text(
        json.dumps({"environments": {"review": {"env": {"MARK": {"value": "review"}}}}})
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "review me")
    assert "skipping build" in push(p, repo, dev, "feature-y")
    p.cli("reviewapps:enable", "-p", base, check=True)
    res = p.cli("reviewapps:create", "-p", base, "-b", "nope")
    assert res.returncode == 1 and "The branch nope is not in the git repository" in res.stderr
    res = p.cli(
        "reviewapps:create", "-p", base, "-b", "feature-y", "--pr", "7", "--wait", check=True
    )
    assert "Status: created" in res.stdout
    name = next(ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("App:"))
    api = p.client()
    assert api.get(f"/apps/{name}/config-vars").json()["MARK"] == "review"
    release = api.get(f"/apps/{name}/releases").json()[-1]
    assert "release-of-review" in api.get(release["output_stream_url"]).text
    listing = p.cli("reviewapps", "-p", base, check=True).stdout
    assert name in listing and "feature-y" in listing and " 7 " in listing
    res = p.cli("reviewapps:destroy", "-a", name, check=True)
    assert f"Destroying review app ⬢ {name}... done" in res.stderr
    assert api.get(f"/apps/{name}").status_code == 404

    # POST /review-apps from a source tarball: pr_number and base_name make the name
    pipeline_id = api.get(f"/pipelines/{base}").json()["id"]
    patched = api.patch(f"/pipelines/{pipeline_id}/review-app-config", json={"base_name": base})
    assert patched.status_code == 200 and patched.json()["base_name"] == base
    blob = api.post("/sources").json()["source_blob"]
    files = {
        "Procfile": PROCFILE,
        "app.json": json.dumps(
            {"environments": {"review": {"env": {"MARK": {"value": "tarball"}}}}}
        ),
    }
    assert httpx.put(blob["put_url"], content=tarball(files)).status_code == 200
    body = {
        "branch": "pr-branch",
        "pipeline": pipeline_id,
        "pr_number": 9,
        "source_blob": {"url": blob["get_url"], "version": "v9"},
        "environment": {"EXTRA": "given"},
    }
    created = api.post("/review-apps", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "creating" and created.json()["pr_number"] == 9
    review_id = created.json()["id"]

    def finished() -> dict[str, object] | None:
        r = api.get(f"/review-apps/{review_id}").json()
        return r if r["status"] not in ("pending", "creating") else None

    done = wait_for(finished, 120, interval=0.5, what="the review app")
    assert done["status"] == "created", done
    assert done["app"] == {"id": done["app"]["id"], "name": f"{base}-pr-9"}  # type: ignore[index]
    config = api.get(f"/apps/{base}-pr-9/config-vars").json()
    assert config["MARK"] == "tarball" and config["EXTRA"] == "given"
    assert api.get(f"/apps/{base}-pr-9/review-app").json()["id"] == review_id
    gone = api.delete(f"/review-apps/{review_id}")
    assert gone.status_code == 200 and gone.json()["status"] == "deleted"
    assert api.get(f"/apps/{base}-pr-9").status_code == 404
    bad = api.post("/review-apps", json=body | {"source_blob": {}})
    assert bad.status_code == 422 and bad.json()["id"] == "invalid_params"

    p.cli("pipelines:rename", base, f"{base}-x", check=True)
    res = p.cli("pipelines:destroy", f"{base}-x", check=True)
    assert f"Destroying {base}-x pipeline... done" in res.stderr
    assert api.get(f"/apps/{dev}/pipeline-couplings").status_code == 404


def test_a_renamed_app_keeps_its_repository_and_a_destroyed_one_loses_it(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    """As on Heroku: a rename keeps the app's git history; a new app of a destroyed app's
    name starts with an empty repository (else a push of the same commit would be
    'Everything up-to-date' and build nothing)."""
    p, api = platform, platform.client()
    old, new = f"repo-{uuid.uuid4().hex[:6]}", f"repo-{uuid.uuid4().hex[:6]}"
    api.post("/apps", json={"name": old}).raise_for_status()
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("hello\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    sha = git(repo, "rev-parse", "HEAD").strip()
    push(p, repo, old, "feature")  # not main: kept without a build

    def refs(app: str) -> str:
        url = p.api_url.replace("http://", f"http://git:{p.api_key}@") + f"/git/{app}.git"
        return git(repo, "ls-remote", url)

    assert f"{sha}\trefs/heads/feature" in refs(old)
    api.patch(f"/apps/{old}", json={"name": new}).raise_for_status()
    wait_for(lambda: sha in refs(new), 10, what="the repository under the new name")
    assert not (p.home / "repos" / f"{old}.git").exists()
    api.delete(f"/apps/{new}").raise_for_status()
    assert not (p.home / "repos" / f"{new}.git").exists()
    api.post("/apps", json={"name": new}).raise_for_status()
    assert sha not in refs(new)
