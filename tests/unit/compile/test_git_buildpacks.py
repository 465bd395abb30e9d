"""Buildpacks by git URL (compile/buildpacks.py): which references are cloned, and a clone
by branch and by commit from a real local repository."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from spruce.compile.buildpacks import BuildpackError, is_git_url, resolve_buildpack


@pytest.mark.parametrize(
    ("ref", "git"),
    [
        ("https://github.com/someone/heroku-buildpack-x", True),
        ("https://github.com/someone/heroku-buildpack-x.git#v3", True),
        ("https://git.example.com/team/bp.git", True),
        ("git@github.com:someone/bp.git", True),
        ("ssh://git@example.com/bp.git", True),
        ("file:///srv/buildpacks/bp.git#main", True),
        ("https://example.com/buildpacks/bp.tgz", False),
        ("https://example.com/bp.tar.gz", False),
        ("https://github.com/someone/bp/archive/main.tar.gz", False),
        ("heroku/python", False),
        ("/opt/buildpacks/local", False),
    ],
)
def test_git_urls(ref: str, git: bool) -> None:
    assert is_git_url(ref) is git


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=T", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_clone_by_branch_and_commit(tmp_path: Path) -> None:
    repo = tmp_path / "bp"
    (repo / "bin").mkdir(parents=True)
    (repo / "bin" / "compile").write_text("#!/bin/sh\necho one\n")
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "one", cwd=repo)
    first = _git("rev-parse", "HEAD", cwd=repo)
    (repo / "bin" / "compile").write_text("#!/bin/sh\necho two\n")
    _git("commit", "-q", "-am", "two", cwd=repo)
    cache = tmp_path / "cache"

    def compile_of(ref: str) -> str:
        bp = asyncio.run(resolve_buildpack(ref, cache))
        assert not (bp.path / ".git").exists()
        return (bp.path / "bin" / "compile").read_text()

    assert "two" in compile_of(f"file://{repo}")
    assert "two" in compile_of(f"file://{repo}#main")
    assert "one" in compile_of(f"file://{repo}#{first}")  # a commit: a full clone
    with pytest.raises(BuildpackError, match="could not clone buildpack"):
        compile_of(f"file://{tmp_path}/nothing.git")
    with pytest.raises(BuildpackError, match="could not clone buildpack"):
        compile_of(f"file://{repo}#no-such-branch")
