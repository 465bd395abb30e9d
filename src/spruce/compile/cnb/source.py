"""The app dir a build starts from: the source without .git, filtered by project.toml's
`io.buildpacks.include` / `exclude` (.gitignore-style patterns) before any buildpack runs."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .descriptor import ProjectDescriptor


def _pattern(text: str) -> tuple[re.Pattern[str], bool]:
    """(regex over the path relative to the app root, directory-only)."""
    raw = text.strip()
    dir_only = raw.endswith("/")
    raw = raw.rstrip("/")
    anchored = raw.startswith("/") or "/" in raw
    raw = raw.lstrip("/")
    out = ""
    i = 0
    while i < len(raw):
        if raw.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif raw.startswith("**", i):
            out += ".*"
            i += 2
        elif raw[i] == "*":
            out += "[^/]*"
            i += 1
        elif raw[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(raw[i])
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{out}$"), dir_only


def _matcher(patterns: list[str]) -> list[tuple[re.Pattern[str], bool]]:
    return [_pattern(p) for p in patterns if p.strip() and not p.strip().startswith("#")]


def _hit(rules: list[tuple[re.Pattern[str], bool]], rel: str, is_dir: bool) -> bool:
    return any(rx.match(rel) and (is_dir or not dir_only) for rx, dir_only in rules)


def copy_source(source: Path, dest: Path, project: ProjectDescriptor | None) -> None:
    include = _matcher(project.include) if project else []
    exclude = _matcher(project.exclude) if project else []
    dest.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(source):
        rel_root = os.path.relpath(root, source)
        rel_root = "" if rel_root == "." else rel_root + "/"
        keep_dirs = []
        for name in sorted(dirs):
            rel = rel_root + name
            if name == ".git" and not rel_root:
                continue
            full = os.path.join(root, name)
            if os.path.islink(full):
                files.append(name)
                continue
            if exclude and _hit(exclude, rel, True):
                continue
            keep_dirs.append(name)
            os.makedirs(dest / rel, exist_ok=True)
        dirs[:] = keep_dirs
        for name in sorted(files):
            rel = rel_root + name
            if exclude and _hit(exclude, rel, False):
                continue
            if include and not any(
                _hit(include, "/".join(rel.split("/")[:i]), i < rel.count("/") + 1)
                for i in range(1, rel.count("/") + 2)
            ):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(root, name), target, follow_symlinks=False)
    if include:  # drop directories that only existed to hold excluded files
        for root, dirs, _files in os.walk(dest, topdown=False):
            for name in dirs:
                path = os.path.join(root, name)
                if not os.path.islink(path) and not os.listdir(path):
                    os.rmdir(path)
