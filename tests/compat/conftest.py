from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from compat_support import HerokuCLI, install_heroku_cli
from support import RunningPlatform, start_platform

TUNING = {"dynos": {"stop_grace": 3.0}, "router": {"boot_wait": 20.0}}


@pytest.fixture(scope="session")
def heroku_bin() -> Path:
    return install_heroku_cli()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(
        tmp_path_factory.mktemp("compat-home"), extra_env={"SPRUCE_TUNING": json.dumps(TUNING)}
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def heroku(
    platform: RunningPlatform, heroku_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> HerokuCLI:
    return HerokuCLI(platform, heroku_bin, tmp_path_factory.mktemp("heroku-home"))
