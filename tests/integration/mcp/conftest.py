"""A real `spruce up` per module for the MCP tests (clients in clients.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support import RunningPlatform, start_platform

TUNING = {"dynos": {"stop_grace": 3.0}, "router": {"boot_wait": 20.0}}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(
        tmp_path_factory.mktemp("mcp-home"), extra_env={"SPRUCE_TUNING": json.dumps(TUNING)}
    )
    yield p
    p.stop()
