"""Spruce's own OCI registry: Debian's `docker-registry` (distribution 2.x), supervised.

It keeps its blobs in its own storage directory under the home, serves TLS with a certificate
given as files (issued by the internal CA by `from_internal_ca`), and requires a username and
password (htpasswd, bcrypt) generated once and kept in the home with mode 0600. A crashed
registry is restarted; its storage survives restarts of the registry and of Spruce.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import yaml

from spruce.addons.runtime import SupervisedServer, wait_until, write_private
from spruce.certs.ca import InternalCA
from spruce.compile.oci.distribution import RegistryClient, RegistryCredentials
from spruce.netutil import free_port

Log = Callable[[str], None]


class RegistryUnavailable(RuntimeError):
    """docker-registry is not installed or did not start."""


@dataclass(frozen=True)
class RegistryTLS:
    cert_file: Path  # leaf certificate (full chain), PEM
    key_file: Path
    ca_file: Path  # what clients verify against


def find_registry_binary(explicit: str | None = None) -> str:
    for candidate in (explicit, shutil.which("docker-registry"), shutil.which("registry")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RegistryUnavailable(
        "docker-registry is not installed (apt-get install docker-registry), "
        "or pass an operator registry with --registry URL"
    )


class RegistryServer:
    """A supervised docker-registry bound to loopback."""

    def __init__(
        self,
        home: Path,
        *,
        tls: RegistryTLS | None,
        host: str = "127.0.0.1",
        port: int | None = None,
        auth: bool = True,
        binary: str | None = None,
        log: Log | None = None,
    ) -> None:
        self.home = Path(home)
        self.tls = tls
        self.host = host
        self._port = port
        self._auth = auth
        self._binary = binary
        self._log = log or (lambda _line: None)
        self.storage_dir = self.home / "storage"
        self.config_path = self.home / "config.yml"
        self._server: SupervisedServer | None = None

    @classmethod
    def from_internal_ca(cls, home: Path, ca: InternalCA, **kwargs: object) -> RegistryServer:
        """A registry whose certificate (for 127.0.0.1 and localhost) the internal CA signs."""
        tls_dir = Path(home) / "tls"
        tls_dir.mkdir(parents=True, exist_ok=True)
        cert, key = tls_dir / "registry.pem", tls_dir / "registry.key"
        if not cert.exists() or not key.exists():
            ca.issue_to_files(cert, key, ["localhost"], ["127.0.0.1", "::1"])
        return cls(home, tls=RegistryTLS(cert, key, ca.cert_path), **kwargs)  # type: ignore[arg-type]

    # -- state kept in the home ------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            port_file = self.home / "port"
            if port_file.exists():
                self._port = int(port_file.read_text())
            else:
                self._port = free_port(self.host)
                port_file.write_text(str(self._port))
        return self._port

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    @property
    def prefix(self) -> str:
        """Spruce owns the whole registry: repositories need no prefix."""
        return ""

    def _secret(self, name: str) -> str:
        path = self.home / name
        if not path.exists():
            write_private(path, secrets.token_urlsafe(24))
        return path.read_text().strip()

    @property
    def credentials(self) -> RegistryCredentials | None:
        if not self._auth:
            return None
        return RegistryCredentials("spruce", self._secret("password"))

    def client(self, timeout: float = 120.0) -> RegistryClient:
        return RegistryClient(
            self.address,
            credentials=self.credentials,
            ca_file=self.tls.ca_file if self.tls else None,
            insecure=self.tls is None,
            timeout=timeout,
        )

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        self.storage_dir.mkdir(exist_ok=True)
        http: dict[str, object] = {
            "addr": self.address,
            "secret": self._secret("http-secret"),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls:
            http["tls"] = {"certificate": str(self.tls.cert_file), "key": str(self.tls.key_file)}
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": http,
        }
        creds = self.credentials
        if creds is not None:
            htpasswd = self.home / "htpasswd"
            # The registry checks the hash on every request (a push or pull is a dozen): the
            # password is 192 random bits, so bcrypt's work factor adds nothing but latency.
            hashed = bcrypt.hashpw(creds.password.encode(), bcrypt.gensalt(rounds=4)).decode()
            write_private(htpasswd, f"{creds.username}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "spruce-registry", "path": str(htpasswd)}}
        write_private(self.config_path, yaml.safe_dump(config, sort_keys=True))

    # -- process -------------------------------------------------------------------------------
    async def _ready(self) -> None:
        verify: object = (
            ssl.create_default_context(cafile=str(self.tls.ca_file)) if self.tls else False
        )
        async with httpx.AsyncClient(verify=verify, timeout=2.0) as http:  # type: ignore[arg-type]

            async def answers() -> bool:
                try:
                    response = await http.get(f"{self.url}/v2/")
                except httpx.HTTPError:
                    return False
                return response.status_code in (200, 401)

            server = self._server
            alive = (lambda: not server.exited()) if server is not None else None
            await wait_until(answers, 30.0, "docker-registry", alive)

    async def start(self) -> None:
        binary = find_registry_binary(self._binary)
        self._write_config()
        self._server = SupervisedServer(
            "registry",
            "docker-registry",
            lambda: [binary, "serve", str(self.config_path)],
            self._ready,
            lambda _id, message: self._log(message),
            cwd=self.home,
            output=self.home / "registry.log",
            pidfile=self.home / "registry.pid",  # docker-registry keeps none of its own
        )
        try:
            await self._server.start()
        except RuntimeError as exc:
            tail = _tail(self.home / "registry.log")
            raise RegistryUnavailable(f"docker-registry did not start: {exc}{tail}") from None
        self._log(f"registry listening on {self.url}")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    @property
    def restarts(self) -> int:
        return self._server.restarts if self._server else 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return (":\n" + "\n".join(text)) if text else ""
