from __future__ import annotations

from pathlib import Path

import pytest
from build_helpers import Builder


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    return Builder(root=tmp_path)
