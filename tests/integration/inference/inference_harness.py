"""A real inference server process for tests and benchmarks.

The platform's side is a `LocalLink` (local subprocesses as one-off dynos) served by a real
`LinkServer` on a unix socket, on its own event loop in a thread; the inference server is a
separate `python -m spruce.inference serve` process with a certificate from an internal CA.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from spruce.certs.ca import InternalCA
from spruce.inference.link import KeyGrant, Limits
from spruce.inference.linkwire import LinkServer
from spruce.inference.locallink import LocalApp, LocalLink
from spruce.netutil import free_port

REPO = Path(__file__).resolve().parents[3]
T = TypeVar("T")


class LinkThread:
    def __init__(self, link: Any, path: Path) -> None:
        self.link = link
        self.server = LinkServer(link, path)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.call(self.server.start())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class InferenceProcess:
    def __init__(
        self,
        home: Path,
        link: Any,
        models: list[dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.ca = InternalCA(home / "ca")
        self.ca_file = str(self.ca.cert_path)
        issued = self.ca.issue([], ips=[host])
        (home / "inference.pem").write_text(issued.cert_pem)
        (home / "inference.key").write_text(issued.key_pem)
        os.chmod(home / "inference.key", 0o600)
        self.link_thread = LinkThread(link, home / "link.sock")
        config: dict[str, Any] = {
            "listen": [f"{host}:{self.port}"],
            "certificate": "inference.pem",
            "private_key": "inference.key",
            "link": "link.sock",
            "cache_dir": str(REPO / ".cache" / "inference-models"),
            "key_cache_seconds": 0.5,
            "log_level": "warning",
        }
        if models is not None:
            (home / "models.yaml").write_text(yaml.safe_dump({"models": models}))
            config["models"] = "models.yaml"
        (home / "inference.yaml").write_text(yaml.safe_dump(config))
        self.log_path = home / "inference.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self, timeout: float = 120) -> InferenceProcess:
        self.link_thread.start()
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "spruce.inference",
                    "serve",
                    "--config",
                    str(self.home / "inference.yaml"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the inference server exited: {self.log()}")
            try:
                httpx.get(self.url + "/available-models", verify=self.ssl_context(), timeout=2)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the inference server did not start: {self.log()}")

    def client(self, key: str | None = None, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.url, headers=headers, verify=self.ssl_context(), timeout=timeout
        )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.link_thread.stop()


def grant(app: LocalApp, model_id: str | None, addon: str = "addon-1", **limits: int) -> KeyGrant:
    return KeyGrant(
        addon_id=addon,
        addon_name=f"inference-{addon}",
        app_id=app.id,
        app_name=app.name,
        model_id=model_id,
        limits=Limits(**limits),
        created_at="2026-01-01T00:00:00Z",
    )


def local_app(root: Path, name: str) -> LocalApp:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    return LocalApp(name=name, id=f"id-{name}", directory=d)


def usage_of(link: LocalLink, timeout: float = 10, **match: Any) -> list[Any]:
    """The usage records matching `match`, once there is one: they are reported after the answer."""
    deadline = time.monotonic() + timeout
    while True:
        found = [u for u in link.usage if all(getattr(u, k) == v for k, v in match.items())]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def sse_data(text: str) -> list[str]:
    return [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]


__all__ = [
    "InferenceProcess",
    "LinkThread",
    "LocalLink",
    "grant",
    "local_app",
    "sse_data",
    "usage_of",
]
