"""The CNB build runner as services' ImageBuildRunner port (Fir apps).

Each app's images go to `<registry>/<prefix>/apps/<app id>`, tagged `latest` and recorded by
digest. The registry's credentials stay here (a client per build), never in the build
sandbox or the build output.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from spruce.compile.oci import ImageRef, RegistryClient, RegistryError
from spruce.services.model import ImageBuildRequest, ImageBuildResult
from spruce.services.ports import Output

from .cnb import CnbBuildRequest, run_build
from .users import ensure_build_user


class CnbImageRunner:
    """Fir builds: detect, analyze, restore, build and export with Spruce's CNB platform."""

    def __init__(
        self,
        address: str,
        client: Callable[[], RegistryClient],
        prefix: str = "",
        run_as: Callable[[], tuple[int, int] | None] | None = None,
    ) -> None:
        """`address` is the registry's host:port and `client` makes a client of it."""
        self.address = address
        self._client = client
        self.prefix = prefix.strip("/")
        self._run_as = run_as or (lambda: ensure_build_user() if os.geteuid() == 0 else None)

    def repository(self, app_id: str) -> str:
        path = f"apps/{app_id.lower()}"
        return f"{self.prefix}/{path}" if self.prefix else path

    def image_repository(self, app_id: str) -> str:
        return f"{self.address}/{self.repository(app_id)}"

    async def build_image(self, request: ImageBuildRequest, output: Output) -> ImageBuildResult:
        target = ImageRef.parse(f"{self.image_repository(request.app_id)}:latest")
        previous = ImageRef.parse(request.previous_image) if request.previous_image else None
        async with self._client() as client:
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

    async def image_exists(self, image: str) -> bool:
        ref = ImageRef.parse(image)
        if ref.registry != self.address or not ref.digest:
            return False
        async with self._client() as client:
            try:
                return await client.get_manifest(ref.repository, ref.digest) is not None
            except RegistryError:
                return False
