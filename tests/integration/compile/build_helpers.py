from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spruce.compile.runner import BuildRequest, BuildResult, run_build

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "apps"


@dataclass
class Builder:
    root: Path
    lines: list[str] = field(default_factory=list)
    count: int = 0

    def app(
        self, name: str, files: dict[str, str] | None = None, example: str | None = None
    ) -> Path:
        path = self.root / "src" / name
        if example is not None:
            shutil.copytree(EXAMPLES / example, path)
        path.mkdir(parents=True, exist_ok=True)
        for rel, text in (files or {}).items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return path

    def request(self, source: Path, **kwargs: object) -> BuildRequest:
        self.count += 1
        return BuildRequest(
            source_dir=source,
            work_dir=self.root / "work" / str(self.count),
            cache_dir=self.root / "cache" / source.name,
            slugs_dir=self.root / "slugs",
            **kwargs,  # type: ignore[arg-type]
        )

    async def build(self, source: Path, **kwargs: object) -> BuildResult:
        return await run_build(self.request(source, **kwargs), self.lines.append)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def make_buildpack(root: Path, detect: str, compile_: str, release: str = 'echo "--- {}"') -> Path:
    """A classic buildpack written by a test: bash bodies for each bin/ script."""
    (root / "bin").mkdir(parents=True)
    for name, body in (("detect", detect), ("compile", compile_), ("release", release)):
        script = root / "bin" / name
        script.write_text("#!/usr/bin/env bash\n" + body + "\n")
        script.chmod(0o755)
    return root


OutputFn = Callable[[str], None]
