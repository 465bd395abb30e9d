"""The OCI registry Fir images are pushed to: a supervised docker-registry, or an operator's."""

from __future__ import annotations

from typing import Protocol

from spruce.compile.oci import RegistryClient
from spruce.compile.oci.distribution import RegistryCredentials

from .external import ExternalRegistry, RegistryConfig
from .server import RegistryServer, RegistryTLS, RegistryUnavailable, find_registry_binary


class Registry(Protocol):
    """What builds and dynos need of a registry, whoever runs it."""

    @property
    def address(self) -> str:
        """host:port, as image references name it."""
        ...

    @property
    def prefix(self) -> str:
        """Path prefix of Spruce's repositories ("" for the supervised registry)."""
        ...

    @property
    def credentials(self) -> RegistryCredentials | None:
        """The login pulls need (a Kubernetes cluster's nodes get it as a pull Secret)."""
        ...

    def client(self, timeout: float = 120.0) -> RegistryClient: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


__all__ = [
    "ExternalRegistry", "Registry", "RegistryConfig", "RegistryServer", "RegistryTLS",
    "RegistryUnavailable", "find_registry_binary",
]  # fmt: skip
