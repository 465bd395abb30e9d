from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _home() -> Iterator[Path]:
    # Not under pytest's basetemp: every pytest session on the machine resets
    # /tmp/pytest-of-<user> to 0700, which would cut the spruce-postgres user off mid-run.
    path = Path(tempfile.mkdtemp(prefix="spruce-addons-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def home() -> Iterator[Path]:
    yield from _home()


@pytest.fixture(scope="module")
def module_home() -> Iterator[Path]:
    yield from _home()
