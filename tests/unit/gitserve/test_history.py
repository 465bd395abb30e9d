"""gitserve.history.GitHistory over a real bare repository (the CommitHistory port)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

from spruce.gitserve.history import GitHistory

ENV = dict(
    os.environ,
    GIT_AUTHOR_NAME="Ann Dev",
    GIT_AUTHOR_EMAIL="ann@example.com",
    GIT_COMMITTER_NAME="Ann Dev",
    GIT_COMMITTER_EMAIL="ann@example.com",
    GIT_CONFIG_NOSYSTEM="1",
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_commits_branches_and_archives(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    repos.mkdir()
    git(repos, "init", "-q", "--bare", "-b", "main", "shop.git")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a.txt").write_text("one\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first")
    first = git(work, "rev-parse", "HEAD")
    (work / "a.txt").write_text("two\n")
    git(work, "commit", "-qam", "second\n\nwith a body")
    (work / "b.txt").write_text("three\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "third")
    third = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", str(repos / "shop.git"), "main", "HEAD:refs/heads/feature")

    history = GitHistory(repos)
    commits = history.commits_between("shop", first, third)
    assert commits is not None
    assert [c.message for c in commits] == ["third", "second"]  # newest first, first lines
    assert commits[0].sha == third and commits[0].author == "Ann Dev"
    assert commits[0].date[:4].isdigit() and "T" in commits[0].date
    assert history.commits_between("shop", third, first) == []
    assert history.commits_between("shop", first, "f" * 40) is None  # unknown commit
    assert history.commits_between("nope", first, third) is None  # no such repository

    assert history.has_branch("shop", "feature") and not history.has_branch("shop", "other")
    assert not history.has_branch("shop", "--all")
    dest = tmp_path / "feature.tgz"
    assert history.archive("shop", "feature", dest) == third
    with tarfile.open(dest) as tar:
        assert sorted(tar.getnames()) == ["a.txt", "b.txt"]
    assert history.archive("shop", "other", tmp_path / "x.tgz") is None


def test_a_locator_finds_each_apps_repository_where_it_is_kept(tmp_path: Path) -> None:
    """A space's app's repository is on its region's root: the locator says where."""
    north = tmp_path / "regions" / "north" / "repos"
    north.mkdir(parents=True)
    git(north, "init", "-q", "--bare", "-b", "main", "far.git")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a.txt").write_text("one\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first")
    first = git(work, "rev-parse", "HEAD")
    git(work, "commit", "-q", "--allow-empty", "-m", "second")
    second = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", str(north / "far.git"), "main", "HEAD:refs/heads/review")

    asked: list[str] = []

    def where(app_name: str) -> Path:
        asked.append(app_name)
        return (north if app_name == "far" else tmp_path / "repos") / f"{app_name}.git"

    history = GitHistory(where)
    commits = history.commits_between("far", first, second)
    assert commits is not None and [c.message for c in commits] == ["second"]
    assert history.has_branch("far", "review") and asked[-1] == "far"
    assert history.archive("far", "review", tmp_path / "r.tgz") == second
    assert history.commits_between("near", first, second) is None  # not there: no repository
