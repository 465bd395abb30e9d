from __future__ import annotations

import pytest

from spruce.netutil import free_port


@pytest.fixture
def port() -> int:
    return free_port()
