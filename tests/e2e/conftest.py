from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from e2e_support import TUNING, Deployer
from support import RunningPlatform, start_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(
        tmp_path_factory.mktemp("e2e-home"), extra_env={"SPRUCE_TUNING": json.dumps(TUNING)}
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def deploy(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> Deployer:
    return Deployer(platform, tmp_path_factory.mktemp("repos"))
