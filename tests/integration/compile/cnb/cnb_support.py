"""Helpers of the CNB tests (a module of its own: test files import it by name)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spruce.compile.cnb import CnbBuildRequest, CnbBuildResult, run_build
from spruce.compile.oci import ImageRef, RegistryClient
from spruce.compile.users import ensure_build_user
from spruce.registry import RegistryServer

FIXTURES = Path(__file__).parent / "fixtures"

needs_tools = pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
    reason="needs docker-registry and bubblewrap (Debian packages)",
)


@dataclass
class FirBuilder:
    root: Path
    registry: RegistryServer
    client: RegistryClient
    lines: list[str] = field(default_factory=list)
    count: int = 0

    def app(self, name: str, files: dict[str, str]) -> Path:
        path = self.root / "src" / name
        for rel, text in files.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return path

    def ref(self, repo: str, tag: str = "latest") -> ImageRef:
        return ImageRef.parse(f"{self.registry.address}/{repo}:{tag}")

    async def build(
        self, source: Path, repo: str = "apps/demo", cache: str | None = None, **kwargs: object
    ) -> CnbBuildResult:
        self.count += 1
        self.lines.clear()
        run_as = ensure_build_user() if os.geteuid() == 0 else None
        req = CnbBuildRequest(
            source_dir=source,
            work_dir=self.root / "work" / str(self.count),
            cache_dir=self.root / "cache" / (cache or source.name),
            image=self.ref(repo),
            registry=self.client,
            run_as=run_as,
            **kwargs,  # type: ignore[arg-type]
        )
        return await run_build(req, self.lines.append)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)
