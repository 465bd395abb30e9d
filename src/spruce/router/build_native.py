"""Build, inspect or remove the router's mypyc-compiled modules (see native.py).

python -m spruce.router.build_native build | status | clean
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .native import (
    COMPILED,
    GROUP,
    PACKAGE,
    SRC,
    STAMP,
    compiled,
    source_digest,
    source_path,
    stamp_matches,
)


def _artifacts() -> list[Path]:
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = [p for p in PACKAGE.rglob("*") if p.name.endswith(suffixes)]
    found += [p for p in SRC.glob(f"{GROUP}__mypyc*") if p.name.endswith(suffixes)]
    return found


def clean() -> None:
    for p in _artifacts():
        p.unlink()
    STAMP.unlink(missing_ok=True)


def build(opt_level: str = "3") -> None:
    """Compile `COMPILED` in place with mypyc and the machine's C compiler."""
    from mypyc.build import mypycify
    from setuptools import setup

    clean()
    paths = [str(source_path(m).relative_to(SRC)) for m in COMPILED]
    digests = {m: source_digest(m) for m in COMPILED}
    with tempfile.TemporaryDirectory(prefix="spruce-mypyc-") as tmp:
        cwd = os.getcwd()
        os.chdir(SRC)
        try:
            setup(
                name="spruce-router-native",
                ext_modules=mypycify(paths, opt_level=opt_level, group_name=GROUP, target_dir=tmp),
                script_args=["build_ext", "--inplace", "--build-temp", tmp, "-q"],
            )
        finally:
            os.chdir(cwd)
        shutil.rmtree(Path(SRC) / "build", ignore_errors=True)
    STAMP.write_text(
        json.dumps({"python": sys.implementation.cache_tag, "modules": digests}, indent=1)
    )


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "status"
    if what == "build":
        if stamp_matches() and "--force" not in argv and len(_artifacts()) > len(COMPILED):
            print("router: compiled modules up to date")
            return 0
        build()
        print(f"router: {len(COMPILED)} modules compiled with mypyc")
    elif what == "clean":
        clean()
    elif what == "status":
        for name in COMPILED:
            importlib.import_module(name)

        names = compiled()
        print("compiled:", ", ".join(names) if names else "none (pure Python)")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
