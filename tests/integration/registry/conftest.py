from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spruce.certs.ca import InternalCA
from spruce.registry import RegistryServer


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryServer]:
    ca = InternalCA(tmp_path / "ca")
    server = RegistryServer.from_internal_ca(tmp_path / "registry", ca)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
