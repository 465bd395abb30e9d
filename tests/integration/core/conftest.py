from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import PostgresServer, RunningPlatform, start_platform


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    """A real `spruce up` per module, once on SQLite and once on PostgreSQL."""
    env = {}
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        env["SPRUCE_DATABASE_URL"] = server.create_database()
    p = start_platform(tmp_path_factory.mktemp(f"home-{request.param}"), extra_env=env)
    yield p
    p.stop()
