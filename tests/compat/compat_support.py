"""Heroku's own CLI (npm `heroku@11`) against a running Spruce, with a throw-away HOME."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

from support import RunningPlatform, start_platform

HEROKU_VERSION = "11"
PACKAGES = [f"heroku@{HEROKU_VERSION}", "@heroku/plugin-ai"]


def cache_dir() -> Path:
    return Path(os.environ.get("SPRUCE_COMPAT_CACHE") or Path.home() / ".cache" / "spruce-compat")


def install_heroku_cli() -> Path:
    """npm-install Heroku's CLI once per machine; returns its bin directory.

    One install at a time (a lock in the cache), and only a checked one counts: a stamp is
    written after `heroku --version` ran, so an install cut short or two that collided are
    wiped and done again instead of failing every test with MODULE_NOT_FOUND."""
    root = cache_dir()
    bin_dir = root / "node_modules" / ".bin"
    stamp = root / ".spruce-installed"
    wanted = " ".join(PACKAGES)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted and (bin_dir / "heroku").exists():
            return bin_dir
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "npm is needed for the compatibility tests (apt-get install nodejs npm)"
            )
        out = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
        version = out.strip()
        if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
            raise RuntimeError(
                f"Heroku's CLI 11 needs Node.js 20 or newer; this machine has {version or 'none'}"
            )
        stamp.unlink(missing_ok=True)
        shutil.rmtree(root / "node_modules", ignore_errors=True)
        (root / "package-lock.json").unlink(missing_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
            cwd=root,
            check=True,
            timeout=900,
        )
        subprocess.run(
            [str(bin_dir / "heroku"), "--version"],
            check=True,
            capture_output=True,
            timeout=120,
            env=dict(os.environ, HOME=str(root)),
        )
        stamp.write_text(wanted)
    return bin_dir


class HerokuCLI:
    def __init__(self, platform: RunningPlatform, bin_dir: Path, home: Path) -> None:
        self.platform = platform
        self.bin_dir = bin_dir
        self.home = home
        out = platform.cli("heroku-env", "--home", str(platform.home), check=True).stdout
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEROKU_", "SSL_CERT_"))}
        for line in out.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        env.update(
            {
                "HOME": str(home),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_DATA_HOME": str(home / ".local" / "share"),
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "NO_COLOR": "1",
                "FORCE_COLOR": "0",
                "GIT_TERMINAL_PROMPT": "0",
            }
        )
        (home / ".cache" / "heroku").mkdir(parents=True, exist_ok=True)
        (home / ".cache" / "heroku" / "terms-of-service").touch()
        self.env = env

    def __call__(
        self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        # Not in the checkout the tests run from: `heroku apps:create` adds a `heroku` remote
        # to the repository it runs in (CI's clone got one, and a CLI test there then found
        # an app it was not given). The throw-away HOME is no repository, nor are its parents.
        env = self.env
        if cwd is None:
            cwd = self.home
            env = dict(self.env, GIT_CEILING_DIRECTORIES=str(self.home.resolve().parent))
        res = subprocess.run(
            [str(self.bin_dir / "heroku"), *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"heroku {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )
        return res

    def git(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["git", "-c", "user.email=dev@example.com", "-c", "user.name=Dev", *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
        return res


def link_ai_plugin(heroku: HerokuCLI) -> None:
    """Make the throw-away HOME's CLI load @heroku/plugin-ai from the npm install, as
    `heroku plugins:link` records it (without its network step)."""
    root = heroku.bin_dir.parent / "@heroku" / "plugin-ai"
    data = Path(heroku.env["XDG_DATA_HOME"]) / "heroku"
    data.mkdir(parents=True, exist_ok=True)
    plugin = {"name": "@heroku/plugin-ai", "type": "link", "root": str(root)}
    (data / "package.json").write_text(
        json.dumps({"private": True, "oclif": {"schema": 1, "plugins": [plugin]}})
    )


def free_loopback_443() -> str | None:
    """A loopback address whose port 443 is free (binding it needs root), or None."""
    import random
    import socket

    if os.geteuid() != 0:
        return None
    for _ in range(20):
        host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((host, 443))
                return host
            except OSError:
                continue
    return None


AI_TUNING = {"dynos": {"stop_grace": 3.0}, "router": {"boot_wait": 20.0}}


def start_inference_platform(home: Path, host: str) -> RunningPlatform:
    """A platform whose inference server is on `host`:443, where the AI plugin calls it
    (the local models only: no download)."""
    return start_platform(
        home,
        extra_env={"SPRUCE_TUNING": json.dumps(AI_TUNING), "HF_HUB_OFFLINE": "1"},
        extra_args=["--inference-host", f"{host}:443"],
    )
