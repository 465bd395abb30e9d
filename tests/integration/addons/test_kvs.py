"""Real redis-server add-ons: provision, TLS and plain URLs, restarts, credentials, settings."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from spruce.addons.base import (
    InvalidSettingError,
    UnknownAddonError,
    UnknownPlanError,
)
from spruce.addons.kvs import RedisProvider
from spruce.addons.runtime import pid_alive

SRC = str(Path(__file__).resolve().parents[3] / "src")


def tls_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, ssl_cert_reqs=None, socket_timeout=5, decode_responses=True)


@pytest.fixture
def events() -> list[tuple[str, str]]:
    return []


@pytest.fixture
async def provider(home: Path, events: list[tuple[str, str]]):
    p = RedisProvider(home, log=lambda a, m: events.append((a, m)), restart_backoff=0.05)
    yield p
    await p.stop()


async def test_provision_write_restart_read(home: Path, provider: RedisProvider) -> None:
    config = await provider.provision("rd-1", "mini")
    assert set(config) == {"URL", "TLS_URL", "PLAIN_URL"}
    assert config["URL"].startswith("rediss://default:p")
    assert config["PLAIN_URL"].startswith("redis://default:p")
    client = tls_client(config["URL"])
    await client.set("greeting", "hello")
    assert await provider.config_get("rd-1", "maxmemory", "appendonly", "maxclients") == {
        "maxmemory": str(25 * 1024 * 1024),
        "appendonly": "yes",
        "maxclients": "20",
    }
    # the app's user runs data commands, not server administration
    with pytest.raises(redis.exceptions.NoPermissionError):
        await client.config_set("maxmemory", "0")
    with pytest.raises(redis.exceptions.NoPermissionError):
        await client.shutdown()
    await client.flushall()
    await client.set("greeting", "hello")
    await client.aclose()
    plain = aioredis.Redis.from_url(config["PLAIN_URL"], decode_responses=True)
    assert await plain.get("greeting") == "hello"
    await plain.aclose()
    await provider.stop()

    again = RedisProvider(home)
    try:
        await again.start(["rd-1"])
        assert again.config("rd-1") == config  # same ports, same password
        client = tls_client(config["URL"])
        assert await client.get("greeting") == "hello"
        await client.aclose()
    finally:
        await again.stop()


async def test_wrong_password_and_reset_credentials(provider: RedisProvider) -> None:
    old = await provider.provision("rd-2", None)
    session = tls_client(old["URL"])
    await session.ping()
    new = await provider.reset_credentials("rd-2")
    assert new["URL"] != old["URL"]
    with pytest.raises(redis.exceptions.RedisError):
        await tls_client(old["URL"]).ping()
    client = tls_client(new["URL"])
    assert await client.ping()
    await client.aclose()
    with pytest.raises(redis.exceptions.ConnectionError):
        await session.execute_command("PING")  # old sessions were closed
    await session.aclose()
    # the new password survives a restart (the config file was rewritten)
    await provider.stop()
    await provider.start(["rd-2"])
    client = tls_client(new["URL"])
    assert await client.ping()
    await client.aclose()


async def test_settings_apply_live_and_persist(home: Path, provider: RedisProvider) -> None:
    config = await provider.provision("rd-3", "premium-0")
    await provider.set_maxmemory_policy("rd-3", "allkeys-lru")
    await provider.set_timeout("rd-3", 42)
    await provider.set_keyspace_notifications("rd-3", "KEA")
    with pytest.raises(InvalidSettingError, match="allkeys-lfu"):
        await provider.set_maxmemory_policy("rd-3", "allkeys-fifo")
    with pytest.raises(InvalidSettingError):
        await provider.set_timeout("rd-3", -1)
    with pytest.raises(InvalidSettingError):
        await provider.set_keyspace_notifications("rd-3", "Kq")

    async def read_back(p: RedisProvider) -> dict[str, str]:
        keys = ("maxmemory-policy", "timeout", "notify-keyspace-events", "maxclients")
        return await p.config_get("rd-3", *keys)

    expected = {
        "maxmemory-policy": "allkeys-lru",
        "timeout": "42",
        "notify-keyspace-events": "AKE",
        "maxclients": "40",
    }
    assert await read_back(provider) == expected
    # notifications reach the app's user (pub/sub channels are allowed to it)
    client = tls_client(config["URL"])
    pubsub = client.pubsub()
    await pubsub.subscribe("__keyevent@0__:set")
    await client.set("watched", "1")
    messages = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not messages:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if msg is not None:
            messages.append(msg)
    assert messages and messages[0]["data"] == "watched"
    await pubsub.aclose()
    await client.aclose()
    await provider.stop()
    again = RedisProvider(home)
    await again.start(["rd-3"])
    try:
        assert await read_back(again) == expected
        labels = dict(await again.info("rd-3"))
        assert labels["Maxmemory"] == "allkeys-lru"
        assert labels["Timeout"] == "42"
        assert labels["Status"] == "available"
        assert labels["Memory"].endswith("/ 50 MB")
    finally:
        await again.stop()


async def test_crashed_server_is_restarted(
    provider: RedisProvider, events: list[tuple[str, str]]
) -> None:
    config = await provider.provision("rd-4", "mini")
    c = tls_client(config["URL"])
    await c.set("k", "v")
    await c.aclose()
    server = provider.server("rd-4")
    assert server is not None and server.pid is not None
    first_pid = server.pid
    os.kill(first_pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.pid != first_pid and any("restarted" in m for _, m in events):
            break
        await asyncio.sleep(0.05)
    assert any(a == "rd-4" and "exited" in m for a, m in events)
    assert any("restarted" in m for _, m in events)
    c = tls_client(config["URL"])
    assert await c.get("k") == "v"  # appendfsync everysec: the write predates the kill by far
    await c.aclose()
    for _, message in events:
        assert config["URL"].split(":")[2].split("@")[0] not in message


async def test_unknown_plan_and_deprovision(home: Path, provider: RedisProvider) -> None:
    with pytest.raises(UnknownPlanError) as err:
        await provider.provision("rd-5", "gigantic")
    assert "premium-14" in str(err.value) and "mini" in str(err.value)
    assert isinstance(err.value, ValueError)
    assert provider.addon_ids() == []
    config = await provider.provision("rd-5", "mini")
    data_dir = home / "addons" / "redis" / "rd-5"
    assert (data_dir / "redis.conf").exists()
    await provider.deprovision("rd-5")
    assert not data_dir.exists()
    assert provider.addon_ids() == []
    with pytest.raises(redis.exceptions.ConnectionError):
        await tls_client(config["URL"]).ping()
    with pytest.raises(UnknownAddonError):
        await provider.deprovision("rd-5")


async def test_server_that_fails_to_start_leaves_nothing(home: Path) -> None:
    broken = home / "fake-redis"
    broken.write_text("#!/bin/sh\necho 'no way' >&2\nexit 3\n")
    broken.chmod(0o755)
    p = RedisProvider(home, redis_server=str(broken), ready_timeout=5)
    from spruce.addons.base import ProvisionError

    with pytest.raises(ProvisionError, match="exited during startup"):
        await p.provision("rd-6", "mini")
    assert p.addon_ids() == []
    assert not (home / "addons" / "redis" / "rd-6").exists()


async def test_cli_params(provider: RedisProvider) -> None:
    config = await provider.provision("rd-7", "mini")
    cmd = provider.cli("rd-7")
    password = config["URL"].split(":")[2].split("@")[0]
    assert password not in " ".join(cmd.argv)
    proc = await asyncio.create_subprocess_exec(
        *cmd.argv, "PING", env={**os.environ, **cmd.env}, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out.strip() == b"PONG"


async def test_server_orphaned_by_a_dead_platform_is_replaced(home: Path) -> None:
    """spruced killed hard leaves redis-server running: the next start takes over its ports."""
    script = (
        "import asyncio, os, sys\n"
        "from pathlib import Path\n"
        "from spruce.addons.kvs import RedisProvider\n"
        "async def main():\n"
        "    p = RedisProvider(Path(sys.argv[1]))\n"
        "    c = await p.provision('rd-8', 'mini')\n"
        "    import redis.asyncio as r\n"
        "    cl = r.Redis.from_url(c['PLAIN_URL'])\n"
        "    await cl.set('survivor', 'yes')\n"
        "    await cl.aclose()\n"
        "    print(p.server('rd-8').pid, flush=True)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(home),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    out, _ = await proc.communicate()
    orphan = int(out.strip())
    os.kill(orphan, 0)  # still running after its parent died
    p = RedisProvider(home)
    config = p.config("rd-8")
    try:
        await p.start(["rd-8"])
        assert p.config("rd-8") == config
        server = p.server("rd-8")
        assert server is not None and server.pid != orphan
        assert not pid_alive(orphan)  # gone (or a zombie awaiting its reaper)
        c = tls_client(config["URL"])
        assert await c.get("survivor") == "yes"
        await c.aclose()
    finally:
        await p.stop()


async def test_taken_port_moves_the_url_and_reports_it(home: Path) -> None:
    changes: list[tuple[str, dict[str, str]]] = []

    async def changed(addon_id: str, config: dict[str, str]) -> None:
        changes.append((addon_id, config))

    p = RedisProvider(home, on_config_changed=changed)
    old = await p.provision("rd-9", "mini")
    await p.change_plan("rd-9", "premium-1")
    assert await p.config_get("rd-9", "maxmemory", "maxclients") == {
        "maxmemory": str(100 * 1024 * 1024),
        "maxclients": "80",
    }
    await p.stop()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", int(old["URL"].rsplit(":", 1)[1])))
    squatter.listen()
    try:
        await p.start(["rd-9"])
        new = p.config("rd-9")
        assert new["URL"] != old["URL"]
        assert changes == [("rd-9", new)]
        c = tls_client(new["URL"])
        assert await c.ping()
        await c.aclose()
        assert dict(await p.info("rd-9"))["Plan"] == "Premium 1"
    finally:
        squatter.close()
        await p.stop()
