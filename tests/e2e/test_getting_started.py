"""docs/getting-started.md, walked as written: its ```sh blocks run in order in one shell,
on a clean home, in a shell that exports GIT_SSL_CAINFO (as many machines' shells do).

A ```sh foreground block (`scripts/up`) runs as a second terminal would, and the walk goes
on once it has printed that Spruce is up. Only the environment differs from a newcomer's
machine: free ports instead of the defaults (SPRUCE_*_PORT, read by `spruce up`), short
dyno timers, and a git identity.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import TUNING
from support import REPO, wait_for

from spruce.netutil import free_port

GUIDE = REPO / "docs" / "getting-started.md"
FENCE = re.compile(r"^```sh( foreground)?\n(.*?)^```$", re.M | re.S)


def guide_blocks() -> list[tuple[bool, str]]:
    """(foreground?, commands) of every ```sh block, in order."""
    return [(bool(m.group(1)), m.group(2)) for m in FENCE.finditer(GUIDE.read_text())]


def newcomer_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "TERM", "TZ", "PIP_CONFIG_FILE", "PYENV_ROOT")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(
        HOME=str(home),
        GIT_SSL_CAINFO="/etc/ssl/certs/ca-certificates.crt",  # the CA trap
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="New Comer", GIT_AUTHOR_EMAIL="newcomer@example.com",
        GIT_COMMITTER_NAME="New Comer", GIT_COMMITTER_EMAIL="newcomer@example.com",
        SPRUCE_API_PORT=str(free_port()), SPRUCE_HTTP_PORT=str(free_port()),
        SPRUCE_HTTPS_PORT=str(free_port()), SPRUCE_GIT_PORT=str(free_port()),
        SPRUCE_ROUTER_WORKERS="1",
        SPRUCE_TUNING=json.dumps(TUNING),
    )  # fmt: skip
    return env


def diagnose(env: dict[str, str]) -> str:
    """The apps' logs, to see why a step failed."""
    out = []
    for app in ("demo", "site"):
        logs = subprocess.run(
            [str(REPO / ".venv" / "bin" / "spruce"), "logs", "-n", "60", "-a", app],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        out.append(f"\n--- logs of {app} ---\n{logs.stdout}{logs.stderr}")
    return "".join(out)


def test_the_guide_has_a_walk_through() -> None:
    blocks = guide_blocks()
    assert [fg for fg, _ in blocks].count(True) == 1 and blocks[0] == (True, "scripts/up\n")
    commands = "".join(text for _, text in blocks)
    for needed in ("spruce login", "git push spruce main", "spruce open", "--http-git"):
        assert needed in commands, needed


@pytest.mark.slow
def test_getting_started_walks_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = newcomer_env(home)
    blocks = guide_blocks()
    foreground = [text for fg, text in blocks if fg]
    walk = "\n".join(
        f"echo '>>> block {i}'\n{text}" for i, (fg, text) in enumerate(blocks) if not fg
    )
    up_log = tmp_path / "terminal-1.log"
    with open(up_log, "wb") as out:
        up = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", "".join(foreground)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        def platform_up() -> bool:
            if up.poll() is not None:
                raise AssertionError(f"scripts/up exited {up.returncode}:\n{up_log.read_text()}")
            return "Spruce is up in " in up_log.read_text()

        wait_for(platform_up, 300, interval=0.2, what="scripts/up")
        started = time.monotonic()
        res = subprocess.run(
            ["bash", "-euxo", "pipefail", "-c", walk],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        transcript = f"{res.stdout}\n--- stderr ---\n{res.stderr}"
        assert res.returncode == 0, transcript[-8000:] + diagnose(env)
        took = time.monotonic() - started
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in its terminal
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    terminal = up_log.read_text()
    assert up.returncode == 0, terminal[-4000:]
    assert "==> Spruce installed in " in terminal and "Starting Spruce on " in terminal
    assert "Traceback" not in terminal, terminal
    # What the guide promises along the way.
    assert "Logged in as admin@spruce.local" in res.stdout
    assert res.stderr.count(" deployed to Spruce") == 2, transcript[-8000:]
    assert "Hello from Spruce! dyno=web." in res.stdout
    assert "Hello from a static site on Spruce" in res.stdout
    assert "GREETING:" in res.stdout and "\nhello\n" in res.stdout
    assert "Scaling dynos on ⬢ demo... done, now running web=2:Standard-1X" in res.stdout
    assert re.search(r"^=== web \(Standard-1X\): .* \(2\)$", res.stdout, re.M), res.stdout
    assert "Destroying ⬢ site (including all add-ons)... done" in res.stdout
    assert " ▸" not in res.stderr and " ›   Warning" not in res.stderr, res.stderr
    assert took < 600
