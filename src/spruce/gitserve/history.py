"""The CommitHistory port over the platform's bare git repositories (pipelines:diff)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from spruce.services.model import Commit

_SEP = "\x1f"

RepoOf = Callable[[str], Path]
"""An app's name to its bare repository (under its region's root for a space's app)."""


def repo_locator(repos: Path | RepoOf) -> RepoOf:
    """`repos` as a locator: a directory holds `<app>.git` for every app."""
    if callable(repos):
        return repos
    where = Path(repos)
    return lambda app_name: where / f"{app_name}.git"


class GitHistory:
    def __init__(self, repos: Path | RepoOf) -> None:
        self.repo_of = repo_locator(repos)

    def rename(self, old_name: str, new_name: str) -> None:
        new = self.repo_of(new_name)
        old = new.parent / f"{old_name}.git"  # same data root: a rename keeps the region
        if old.is_dir() and not new.exists():
            old.rename(new)

    def forget(self, app_name: str) -> None:
        shutil.rmtree(self.repo_of(app_name), ignore_errors=True)

    def _git(self, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
        git = shutil.which("git") or "git"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env["GIT_DIR"] = str(repo)
        return subprocess.run(
            [git, *args], env=env, capture_output=True, text=True, timeout=30, check=False
        )

    def commits_between(self, app_name: str, base: str, head: str) -> list[Commit] | None:
        repo = self.repo_of(app_name)
        if not repo.is_dir():
            return None
        for sha in (base, head):
            if self._git(repo, "cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
                return None
        fmt = _SEP.join(("%H", "%aI", "%an", "%s"))
        res = self._git(repo, "log", f"--format={fmt}", f"{base}..{head}")
        if res.returncode != 0:
            return None
        commits = []
        for line in res.stdout.splitlines():
            parts = line.split(_SEP)
            if len(parts) == 4:
                commits.append(Commit(*parts))
        return commits

    def has_branch(self, app_name: str, branch: str) -> bool:
        repo = self.repo_of(app_name)
        if not repo.is_dir() or branch.startswith("-"):
            return False
        return (
            self._git(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}").returncode == 0
        )

    def archive(self, app_name: str, branch: str, dest: Path) -> str | None:
        repo = self.repo_of(app_name)
        if not self.has_branch(app_name, branch):
            return None
        res = self._git(repo, "rev-parse", f"refs/heads/{branch}")
        sha = res.stdout.strip()
        made = self._git(repo, "archive", "--format=tar.gz", "-o", str(dest), sha)
        return sha if made.returncode == 0 and dest.exists() else None
