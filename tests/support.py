"""Test support: real servers on free loopback ports (the platform itself, PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spruce.netutil import free_port

ACCEPT = "application/vnd.heroku+json; version=3"
REPO = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Any, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class RunningPlatform:
    home: Path
    proc: subprocess.Popen[bytes]
    endpoints: dict[str, Any]
    env: dict[str, str]
    log_path: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return str(self.endpoints["api_url"])

    @property
    def api_key(self) -> str:
        return str(self.endpoints["api_key"])

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Accept": ACCEPT, "Authorization": f"Bearer {key or self.api_key}"},
            timeout=30,
        )

    def cli(
        self,
        *args: str,
        key: str | None = None,
        cwd: str | None = None,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        env["SPRUCE_API_URL"] = self.api_url
        env["SPRUCE_API_KEY"] = key or self.api_key
        if cwd is not None:
            # git finds no repository above the test's own directory: a basetemp inside
            # a checkout (CI's .tiers/) would lend the test that checkout's remotes
            env["GIT_CEILING_DIRECTORIES"] = str(Path(cwd).resolve().parent)
        res = subprocess.run(
            [sys.executable, "-m", "spruce.cli.main", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"spruce {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}"
            )
        return res

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def platform_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SPRUCE_API_URL", None)
    env.pop("SPRUCE_API_KEY", None)
    if extra:
        env.update(extra)
    return env


def start_platform(
    home: Path,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    timeout: float = 60,
) -> RunningPlatform:
    home.mkdir(parents=True, exist_ok=True)
    ep = home / "endpoints.json"
    if ep.exists():
        ep.unlink()
    env = platform_env(extra_env)
    # The CLI keeps credentials and the CA under XDG_CONFIG_HOME: never the real home's.
    env.setdefault("XDG_CONFIG_HOME", str(home / "cli-config"))
    log_path = home / f"platform-{uuid.uuid4().hex[:6]}.log"
    args = [
        sys.executable,
        "-m",
        "spruce.cli.main",
        "up",
        "--home",
        str(home),
        "--api-port",
        "0",
        "--http-port",
        str(free_port()),
        "--https-port",
        str(free_port()),
        "--git-port",
        str(free_port()),
        "--router-workers",
        "1",
        *(extra_args or []),
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def ready() -> Any:
        if proc.poll() is not None:
            raise RuntimeError(f"spruce up exited {proc.returncode}: {log_path.read_text()}")
        return json.loads(ep.read_text()) if ep.exists() else None

    try:
        endpoints = wait_for(ready, timeout, what="spruce up")
    except Exception:
        proc.kill()
        raise
    return RunningPlatform(home, proc, endpoints, env, log_path, extra_args or [])


# -- PostgreSQL -----------------------------------------------------------------
def pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "pg_ctl").exists():
            return d
    return None


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free port (run as `postgres` when we are root)."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found: apt-get install postgresql")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="spruce-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        os.chmod(self.dir, 0o777)
        self.data = self.dir / "data"
        self._run("initdb", "-D", str(self.data), "-U", "spruce", "--auth=trust", "-E", "UTF8")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://spruce@127.0.0.1:{self.port}/{db}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
