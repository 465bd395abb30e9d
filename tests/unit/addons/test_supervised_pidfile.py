"""A supervised server without a pid file of its own (docker-registry) gets one from
SupervisedServer, and a server a killed platform left running is ended at the next start."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from spruce.addons.runtime import SupervisedServer, pid_alive


async def _ready() -> None:
    return None


def _server(pidfile: Path) -> SupervisedServer:
    sleep = shutil.which("sleep") or "/bin/sleep"
    return SupervisedServer(
        "registry", "sleeper", lambda: [sleep, "300"], _ready, lambda *_: None, pidfile=pidfile
    )


async def test_a_leftover_server_is_ended_before_the_next_spawn(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    first = _server(pidfile)
    await first.start()
    old = first.pid
    assert old is not None and pidfile.read_text().strip() == str(old)
    # The platform dies without stopping it (its supervision ends, the process stays); a
    # new platform's server starts over the same pid file, and the old process goes.
    assert first._watch is not None
    first._watch.cancel()
    second = _server(pidfile)
    await second.start()
    try:
        for _ in range(100):
            if not pid_alive(old):
                break
            await asyncio.sleep(0.05)
        assert not pid_alive(old)
        assert second.pid != old and pid_alive(second.pid or 0)
        assert pidfile.read_text().strip() == str(second.pid)
    finally:
        await second.stop()


async def test_a_pid_reused_by_another_program_is_left_alone(tmp_path: Path) -> None:
    other = await asyncio.create_subprocess_exec(shutil.which("tail") or "tail", "-f", "/dev/null")
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{other.pid}\n")
    server = _server(pidfile)
    await server.start()
    try:
        assert pid_alive(other.pid)
    finally:
        await server.stop()
        other.kill()
        await other.wait()
