"""The CNB build runner as services' ImageBuildRunner port (Fir apps).

Each app's images go to `<registry>/<prefix>/apps/<app id>`, tagged `latest` and recorded by
digest; with `registries`, the registry is the app's (its region's for a space's app). The registry's credentials stay here (a client per build), never in the build
sandbox or the build output.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from spruce.compile.oci import ImageRef, RegistryClient, RegistryError
from spruce.services.model import ImageBuildRequest, ImageBuildResult
from spruce.services.ports import Output

from .cnb import CnbBuildRequest, run_build
from .users import ensure_build_user


class ImageRegistry(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    def client(self, timeout: float = 120.0) -> RegistryClient: ...


class AppRegistries(Protocol):
    """Which registry holds an app's images (spruce.registry.regional)."""

    def for_app(self, app_id: str) -> ImageRegistry: ...

    def by_address(self, address: str) -> ImageRegistry | None: ...

    async def ready_for(self, app_id: str) -> None: ...


class CnbImageRunner:
    """Fir builds: detect, analyze, restore, build and export with Spruce's CNB platform."""

    def __init__(
        self,
        address: str,
        client: Callable[[], RegistryClient],
        prefix: str = "",
        run_as: Callable[[], tuple[int, int] | None] | None = None,
        *,
        registries: AppRegistries | None = None,
    ) -> None:
        """`address` is the registry's host:port and `client` makes a client of it;
        `registries`, when given, picks each app's registry instead."""
        self.address = address
        self._client = client
        self.prefix = prefix.strip("/")
        self._registries = registries
        self._run_as = run_as or (lambda: ensure_build_user() if os.geteuid() == 0 else None)

    def _target(self, app_id: str) -> tuple[str, str, Callable[[], RegistryClient]]:
        """(address, prefix, client factory) of the registry for the app's images."""
        if self._registries is None:
            return self.address, self.prefix, self._client
        r = self._registries.for_app(app_id)
        return r.address, r.prefix.strip("/"), r.client

    def repository(self, app_id: str) -> str:
        path = f"apps/{app_id.lower()}"
        prefix = self._target(app_id)[1]
        return f"{prefix}/{path}" if prefix else path

    def image_repository(self, app_id: str) -> str:
        return f"{self._target(app_id)[0]}/{self.repository(app_id)}"

    async def build_image(self, request: ImageBuildRequest, output: Output) -> ImageBuildResult:
        target = ImageRef.parse(f"{self.image_repository(request.app_id)}:latest")
        previous = ImageRef.parse(request.previous_image) if request.previous_image else None
        if previous is not None and previous.registry != target.registry:
            previous = None  # another registry's image (promoted from elsewhere): no reuse
        if self._registries is not None:
            await self._registries.ready_for(request.app_id)
        async with self._target(request.app_id)[2]() as client:
            result = await run_build(
                CnbBuildRequest(
                    source_dir=request.source_dir,
                    work_dir=request.work_dir,
                    cache_dir=request.cache_dir,
                    image=target,
                    registry=client,
                    env=dict(request.env),
                    buildpacks=list(request.buildpacks),
                    source_version=request.source_version,
                    timeout=request.timeout,
                    run_as=self._run_as(),
                    previous_image=previous,
                    buildpack_cache_dir=request.buildpack_cache_dir,
                ),
                output,
            )
        return ImageBuildResult(
            image=result.image,
            digest=result.digest,
            image_repo=self.image_repository(request.app_id),
            process_types=result.process_types,
            buildpacks=result.buildpacks,
            base_image_name=result.base_image_name,
            base_top_layer=result.base_top_layer,
            architecture=result.architecture,
            uploaded_blobs=len(result.uploaded_blobs),
            duration=result.duration,
        )

    def _client_of(self, address: str) -> Callable[[], RegistryClient] | None:
        if self._registries is not None:
            found = self._registries.by_address(address)
            return found.client if found is not None else None
        return self._client if address == self.address else None

    async def copy_image(self, image: str, app_id: str) -> str:
        """The image's config, layers and manifest, pushed to the app's repository in the
        app's registry (blobs it has already are not sent again)."""
        src = ImageRef.parse(image)
        source = self._client_of(src.registry)
        if source is None or not src.digest:
            raise RegistryError(f"{image} is not in one of the platform's registries")
        dest_repo = self.repository(app_id)
        if src.registry == self._target(app_id)[0] and src.repository == dest_repo:
            return self.image_repository(app_id)
        if self._registries is not None:
            await self._registries.ready_for(app_id)
        async with source() as pull, self._target(app_id)[2]() as push:
            found = await pull.get_manifest(src.repository, src.digest)
            if found is None:
                raise RegistryError(f"{image} is gone from its registry")
            data, media, digest = found
            manifest = json.loads(data)
            if not isinstance(manifest.get("layers"), list) or "config" not in manifest:
                raise RegistryError(f"{image} is not a single image's manifest")
            with tempfile.TemporaryDirectory(prefix="spruce-image-copy-") as tmp:
                for blob in [manifest["config"], *manifest["layers"]]:
                    d = str(blob["digest"])
                    if await push.has_blob(dest_repo, d):
                        continue
                    path = Path(tmp) / d.replace(":", "-")
                    await pull.download_blob(src.repository, d, path)
                    await push.push_blob(dest_repo, d, path)
                    path.unlink()
            await push.put_manifest(dest_repo, digest, data, media)
        return self.image_repository(app_id)

    async def image_exists(self, image: str) -> bool:
        ref = ImageRef.parse(image)
        if not ref.digest:
            return False
        factory: Callable[[], RegistryClient] = self._client
        if self._registries is not None:
            found = self._registries.by_address(ref.registry)
            if found is None:
                return False
            factory = found.client
        elif ref.registry != self.address:
            return False
        async with factory() as client:
            try:
                return await client.get_manifest(ref.repository, ref.digest) is not None
            except RegistryError:
                return False
