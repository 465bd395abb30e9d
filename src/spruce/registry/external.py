"""An operator's OCI registry (`spruce up --registry URL`), used the way the supervised one is.

Spruce starts nothing for it: it only checks at start that the registry answers and accepts
the credentials, so a wrong URL or password fails `spruce up` with a sentence, not the first
build. Credentials stay with the platform (they never reach a build sandbox or a log line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from spruce.compile.oci import RegistryClient, RegistryCredentials, RegistryError

from .server import RegistryUnavailable


@dataclass(frozen=True)
class RegistryConfig:
    """What `spruce up --registry URL [--registry-username U] [--registry-ca PEM]` gives."""

    url: str
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None


class ExternalRegistry:
    """The operator's registry: `address` (host:port), a path prefix for repositories."""

    def __init__(self, config: RegistryConfig) -> None:
        parts = urlsplit(config.url if "://" in config.url else f"https://{config.url}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--registry must be an http(s) URL of a registry, not {config.url!r}")
        if "@" in parts.netloc:
            raise ValueError(
                "--registry: give the username with --registry-username, not in the URL"
            )
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("--registry: plain http is only allowed on loopback; use https")
        if config.ca_file is not None and not Path(config.ca_file).is_file():
            raise ValueError(f"--registry-ca: no such file {config.ca_file}")
        self.address = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._insecure = parts.scheme == "http"
        self._ca_file = Path(config.ca_file) if config.ca_file else None
        self._credentials = (
            RegistryCredentials(config.username, config.password or "") if config.username else None
        )

    @property
    def credentials(self) -> RegistryCredentials | None:
        return self._credentials

    def client(self, timeout: float = 120.0) -> RegistryClient:
        return RegistryClient(
            self.address,
            credentials=self._credentials,
            ca_file=self._ca_file,
            insecure=self._insecure,
            timeout=timeout,
        )

    async def start(self) -> None:
        async with self.client(timeout=15.0) as client:
            try:
                await client.ping()
            except (RegistryError, httpx.HTTPError) as exc:
                raise RegistryUnavailable(f"the registry {self.url} is not usable: {exc}") from None

    async def stop(self) -> None:
        return None
