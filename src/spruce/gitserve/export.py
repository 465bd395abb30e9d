"""Exporting a pushed commit's tree into a directory (the build's source dir)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from spruce.compile.archive import extract_tarball


class ExportError(RuntimeError):
    pass


async def export_tree(
    repo_path: Path,
    rev: str,
    dest_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    git: str = "git",
) -> Path:
    """`git archive` rev into dest_dir (created); extra_env carries quarantine variables.

    The archive goes through the same safety checks as uploaded source tarballs.
    """
    env = dict(os.environ)
    env.update(extra_env or {})
    env["GIT_DIR"] = str(repo_path)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    if await _empty_tree(git, rev, env):
        # Its archive is a pax header and end-of-archive blocks, which tarfile refuses.
        dest_dir.mkdir(exist_ok=True)
        return dest_dir
    with tempfile.NamedTemporaryFile(dir=dest_dir.parent, suffix=".tar") as tmp:
        proc = await asyncio.create_subprocess_exec(
            git, "archive", "--format=tar", rev,
            stdout=tmp, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise ExportError(f"git archive {rev} failed: {err.decode(errors='replace').strip()}")
        await asyncio.to_thread(extract_tarball, tmp.name, dest_dir)
    return dest_dir


async def _empty_tree(git: str, rev: str, env: Mapping[str, str]) -> bool:
    proc = await asyncio.create_subprocess_exec(
        git, "ls-tree", rev,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env),
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ExportError(f"git ls-tree {rev} failed: {err.decode(errors='replace').strip()}")
    return not out.strip()
