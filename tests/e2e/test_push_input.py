"""What users push never makes an internal error: each odd push gets Heroku's message and
exit status through real git, and the platform's log holds no traceback afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import TUNING, Deployer
from support import RunningPlatform, start_platform

SLUG_LIMIT = 4 * 2**20  # a "huge" file without pushing 500 MB


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    tuning = {**TUNING, "build": {**TUNING["build"], "slug_limit": SLUG_LIMIT}}
    p = start_platform(
        tmp_path_factory.mktemp("push-input"), extra_env={"SPRUCE_TUNING": json.dumps(tuning)}
    )
    yield p
    p.stop()


def new_app(platform: RunningPlatform, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    platform.client().post("/apps", json={"name": name}).raise_for_status()
    return name


def versions(platform: RunningPlatform, app: str) -> list[int]:
    return [r["version"] for r in platform.client().get(f"/apps/{app}/releases").json()]


def rejected(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 1, res.stderr
    assert "[remote rejected] HEAD -> main (pre-receive hook declined)" in res.stderr
    assert "internal error" not in res.stderr


def test_empty_tree(platform: RunningPlatform, deploy: Deployer) -> None:
    """`git archive` of an empty tree is a pax header and end blocks: no language, once."""
    app = new_app(platform, "empty")
    repo = deploy.repo(app)  # one empty commit
    res = deploy.push(repo, app)
    rejected(res)
    assert res.stderr.count("No default language could be detected for this app.") == 1
    assert "remote:  !     Push rejected, failed to compile app." in res.stderr
    assert versions(platform, app) == [1]


def test_procfile_only(platform: RunningPlatform, deploy: Deployer) -> None:
    app = new_app(platform, "proc")
    repo = deploy.repo(app, files={"Procfile": "web: python3 -m http.server $PORT\n"})
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    assert "remote: -----> Procfile app detected" in res.stderr
    url = platform.client().get(f"/apps/{app}").json()["web_url"]
    assert f"remote:        {url} deployed to Spruce" in res.stderr
    deploy.wait_serving(app, "Procfile")  # http.server lists the app's files


def test_binary_blob(platform: RunningPlatform, deploy: Deployer) -> None:
    """Random bytes under a name that is not UTF-8 deploy as they are; a binary Procfile is
    refused in a sentence."""
    app = new_app(platform, "blob")
    repo = deploy.repo(app, files={"Procfile": "web: sleep 600\n"})
    (repo / os.fsdecode(b"data-\xe9\xff.bin")).write_bytes(os.urandom(200_000))
    deploy.commit(repo, "binary data")
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    assert "Released v2" in res.stderr
    (repo / "Procfile").write_bytes(os.urandom(2000) + b"\xff\xfe")
    deploy.commit(repo, "binary Procfile")
    res = deploy.push(repo, app)
    rejected(res)
    assert "remote:  !     Procfile is not a text file: it must be UTF-8 text." in res.stderr
    assert versions(platform, app) == [1, 2]


def test_huge_file(platform: RunningPlatform, deploy: Deployer) -> None:
    """A slug over the limit fails the build with Heroku's message; nothing is released."""
    app = new_app(platform, "huge")
    repo = deploy.repo(app, files={"Procfile": "web: sleep 600\n"})
    (repo / "huge.bin").write_bytes(os.urandom(6 * 2**20))  # random: gzip cannot shrink it
    deploy.commit(repo, "huge")
    res = deploy.push(repo, app)
    rejected(res)
    assert "remote:  !     Compiled slug size: 6M is too large (max is 4M)." in res.stderr
    assert res.stderr.count("is too large") == 1
    assert versions(platform, app) == [1]
    assert not list((platform.home / "slugs").glob("*.tgz.part"))


def test_non_main_branch(platform: RunningPlatform, deploy: Deployer) -> None:
    """As on Heroku: accepted (exit 0), kept, not built."""
    app = new_app(platform, "branch")
    repo = deploy.repo(app, files={"Procfile": "web: sleep 600\n"})
    res = deploy.push(repo, app, branch="feature")
    assert res.returncode == 0, res.stderr
    assert "remote: Pushed to non-main branch, skipping build." in res.stderr
    assert "remote: To deploy it: git push <remote> feature:main" in res.stderr
    assert "[new branch]      HEAD -> feature" in res.stderr
    assert versions(platform, app) == [1]
    assert platform.client().get(f"/apps/{app}/builds").json() == []


def test_no_push_path_logs_a_traceback(
    platform: RunningPlatform, deploy: Deployer, tmp_path: Path
) -> None:
    """Odd pushes of its own (a link out of the tree, deleting main, main and master at
    once), then the platform's log, which also covers every push above, holds no traceback."""
    app = new_app(platform, "odd")
    repo = deploy.repo(app, files={"Procfile": "web: sleep 600\n"})
    (repo / "passwd").symlink_to("/etc/passwd")
    deploy.commit(repo, "a link out")
    res = deploy.push(repo, app)
    rejected(res)
    assert "Push rejected: the pushed tree cannot be used" in res.stderr
    assert "refusing link 'passwd' -> '/etc/passwd'" in res.stderr
    (repo / "passwd").unlink()
    deploy.commit(repo, "no link")
    assert deploy.push(repo, app).returncode == 0
    url = deploy.push_url(app)
    res = deploy.git(repo, "push", url, ":main", check=False)
    assert res.returncode == 1 and "Deleting main is not allowed." in res.stderr
    deploy.commit(repo, "both branches")
    res = deploy.git(repo, "push", url, "HEAD:main", "HEAD:master", check=False)
    assert res.returncode == 1 and "Push either main or master, not both at once." in res.stderr
    log = platform.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
    assert "git push hook failed" not in log
