from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cnb_support import FirBuilder

from spruce.certs.ca import InternalCA
from spruce.registry import RegistryServer


@pytest.fixture
async def fir(tmp_path: Path) -> AsyncIterator[FirBuilder]:
    # Under /tmp dirs are 0755 all the way, as the build user needs.
    os.chmod(tmp_path, 0o755)
    server = RegistryServer.from_internal_ca(tmp_path / "registry", InternalCA(tmp_path / "ca"))
    await server.start()
    try:
        async with server.client() as client:
            yield FirBuilder(tmp_path, server, client)
    finally:
        await server.stop()
