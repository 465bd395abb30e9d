"""The router's hot modules compiled with mypyc, and the choice between them and the source.

    python -m spruce.router.build_native build     # compile in place (scripts/install runs it)
    python -m spruce.router.build_native status    # what a router process would import
    python -m spruce.router.build_native clean

The modules in `COMPILED` stay ordinary typed Python (mypy --strict checks them); mypyc turns
them into C extensions next to their sources, built with the machine's C compiler. A router
imports the compiled modules only when they were built from exactly the sources beside them
(a stamp of their hashes is written by `build`), and never with SPRUCE_ROUTER_PURE=1 in the
environment: then, or when nothing was built or a source changed since, every module of the
router comes from its .py file (`spruce.router.__init__` installs the finder below). The
tests run both ways, and a hypothesis test compares the two.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent  # src/spruce/router
SRC = PACKAGE.parents[1]
# the sans-IO protocol code, the fast lanes' per-request work and what it calls on the router
COMPILED = (
    "spruce.router.proto.http1",
    "spruce.router.proto.h1",
    "spruce.router.proto.fast",
    "spruce.router.proto.headers",
    "spruce.router.proto.hpack",
    "spruce.router.proto.h2_request",
    "spruce.router.proto.h2",
    "spruce.router.admission",
    "spruce.router.logline",
    "spruce.router.h1_fast",
    "spruce.router.h2_fast",
    "spruce.router.state",
    "spruce.router.proxy",
    "spruce.router.control",
    "spruce.router.stream",
    "spruce.router.early",
)
GROUP = "spruce_router"  # mypyc's shared library: spruce_router__mypyc.<abi>.so in src/
STAMP = PACKAGE / ".native.json"
PURE_ENV = "SPRUCE_ROUTER_PURE"


def source_path(module: str) -> Path:
    return SRC.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(module: str) -> str:
    return hashlib.sha256(source_path(module).read_bytes()).hexdigest()


def stamp_matches() -> bool:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return False
    try:
        return stamp.get("python") == sys.implementation.cache_tag and all(
            stamp["modules"].get(m) == source_digest(m) for m in COMPILED
        )
    except (OSError, KeyError, AttributeError):
        return False


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the router's modules as .py files only (never an extension beside them)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("spruce.router.") or path is None:
            return None
        loaders = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)]
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, *loaders).find_spec(fullname)
            if spec is not None:
                return spec
        return None


_finder: _SourceFirst | None = None


def choose() -> None:
    """Called once by spruce.router's __init__: the source unless the build matches."""
    global _finder
    if _finder is None and (os.environ.get(PURE_ENV) or not stamp_matches()):
        _finder = _SourceFirst()
        sys.meta_path.insert(0, _finder)


def compiled() -> list[str]:
    """The router modules this process imported as compiled extensions."""
    return sorted(
        name
        for name, mod in list(sys.modules.items())
        if name.startswith("spruce.router.")
        and str(getattr(mod, "__file__", "")).endswith(
            tuple(importlib.machinery.EXTENSION_SUFFIXES)
        )
    )
