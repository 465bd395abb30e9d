"""A registry per region: a space's Fir app's images are kept in its region's registry.

The platform's registry (`<home>/registry`) holds the images of apps outside a space. Each
operator region has a supervised docker-registry of its own whose storage is under the
region's data root (`<home>/regions/<region>/registry`), on its own port, with a certificate
from the same internal CA (so whatever trusts the platform's registry trusts every region's)
and a login of its own. A region's registry starts with the region's first Fir build, and
with the platform once it holds images.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from spruce.certs.ca import InternalCA
from spruce.compile.oci import RegistryClient
from spruce.compile.oci.distribution import RegistryCredentials

from . import Registry
from .server import RegistryServer

RegionOf = Callable[[str], str | None]
"""An app's id to its region when it runs in a space, else None."""


class RegionalRegistries:
    """The platform's registry and each region's; as a `Registry` it is the platform's."""

    def __init__(
        self,
        main: Registry,
        regions: dict[str, RegistryServer],
        region_of: RegionOf,
    ) -> None:
        self.main = main
        self.regions = regions
        self._region_of = region_of
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: set[str] = set()

    @classmethod
    def on_internal_ca(
        cls,
        main: Registry,
        home: Path,
        regions: tuple[str, ...],
        ca: InternalCA,
        region_of: RegionOf,
        log: Callable[[str], None],
    ) -> RegionalRegistries:
        servers = {
            name: RegistryServer.from_internal_ca(
                Path(home) / "regions" / name / "registry",
                ca,
                log=lambda line, name=name: log(f"{name}: {line}"),
            )
            for name in regions
        }
        for server in servers.values():
            server.port  # noqa: B018 - fixed now: nodes can be told to trust it before a build
        return cls(main, servers, region_of)

    # -- the platform's registry (the Registry protocol) -----------------------------------
    @property
    def address(self) -> str:
        return self.main.address

    @property
    def prefix(self) -> str:
        return self.main.prefix

    @property
    def credentials(self) -> RegistryCredentials | None:
        return self.main.credentials

    def client(self, timeout: float = 120.0) -> RegistryClient:
        return self.main.client(timeout)

    # -- by app and by address -------------------------------------------------------------
    def for_app(self, app_id: str) -> Registry:
        """Where the app's images go: its region's registry for a space's app."""
        region = self._region_of(app_id)
        return self.regions.get(region, self.main) if region else self.main

    def by_address(self, address: str) -> Registry | None:
        for registry in self.every():
            if registry.address == address:
                return registry
        return None

    def client_for(self, address: str, timeout: float = 120.0) -> RegistryClient:
        """A client of the registry an image reference names (the platform's when the
        address is none of these: an operator's --registry, say)."""
        return (self.by_address(address) or self.main).client(timeout)

    def every(self) -> list[Registry]:
        return [self.main, *self.regions.values()]

    def logins(self) -> list[tuple[str, RegistryCredentials]]:
        """(address, login) of each registry that needs one (a Kubernetes pull Secret)."""
        return [(r.address, c) for r in self.every() if (c := r.credentials) is not None]

    # -- processes -------------------------------------------------------------------------
    async def ready_for(self, app_id: str) -> None:
        """Start the app's region's registry if it is not running yet."""
        region = self._region_of(app_id)
        if region and region in self.regions:
            await self._start_region(region)

    async def _start_region(self, region: str) -> None:
        async with self._locks.setdefault(region, asyncio.Lock()):
            if region not in self._running:
                await self.regions[region].start()
                self._running.add(region)

    async def start(self) -> None:
        """The platform's registry, and each region's that already holds images."""
        await self.main.start()
        for region, server in self.regions.items():
            if server.storage_dir.is_dir():
                await self._start_region(region)

    async def stop(self) -> None:
        for region in sorted(self._running):
            await self.regions[region].stop()
        self._running.clear()
        await self.main.stop()
