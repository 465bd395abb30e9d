"""The classic buildpack runner as services' BuildRunner port."""

from __future__ import annotations

from pathlib import Path

from spruce.services.model import BuildRequest, BuildResult
from spruce.services.ports import Output

from .archive import extract_source_tarball
from .runner import run_build


class ClassicBuildRunner:
    """Cedar builds: bin/detect, bin/compile, bin/release, then a slug tarball."""

    async def build(self, request: BuildRequest, output: Output) -> BuildResult:
        return await run_build(request, output)

    def extract_source(self, archive: Path, dest: Path) -> Path:
        return extract_source_tarball(archive, dest)
