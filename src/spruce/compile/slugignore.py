"""`.slugignore`: paths removed from the source before the buildpacks run (as on Heroku).

One pattern per line, `#` comments; patterns without a `/` match at any depth (like
.gitignore), patterns with a `/` are anchored at the app root; `*`, `?` and `**` globs work.
There is no negation (Heroku has none either).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path


def slugignore_patterns(text: str) -> list[str]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        patterns.append(line)
    return patterns


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _matches(rel: str, is_dir: bool, pattern: str) -> bool:
    dir_only = pattern.endswith("/")
    pat = pattern.rstrip("/")
    if dir_only and not is_dir:
        return False
    if "/" in pat:  # anchored at the root, like .gitignore
        return _glob_regex(pat.lstrip("/")).match(rel) is not None
    return _glob_regex(pat).match(rel.rsplit("/", 1)[-1]) is not None


def apply_slugignore(build_dir: str | Path) -> list[str]:
    """Delete what `.slugignore` names; return the removed paths (relative, sorted)."""
    root = Path(build_dir)
    ignore_file = root / ".slugignore"
    if not ignore_file.is_file():
        return []
    patterns = slugignore_patterns(ignore_file.read_text(errors="replace"))
    removed: list[str] = []
    # Walk top-down so a removed directory is not descended into.
    stack = [root]
    while stack:
        directory = stack.pop()
        for entry in sorted(directory.iterdir()):
            rel = entry.relative_to(root).as_posix()
            is_dir = entry.is_dir() and not entry.is_symlink()
            if any(_matches(rel, is_dir, p) for p in patterns):
                if is_dir:
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(rel)
            elif is_dir:
                stack.append(entry)
    return sorted(removed)
