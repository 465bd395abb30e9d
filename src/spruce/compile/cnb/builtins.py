"""Spruce's built-in CNBs (heroku/python, heroku/nodejs, heroku/dotnet, heroku/procfile,
heroku/static-web-server),
the builder order, and how buildpack references (ids, paths, URLs) are found."""

from __future__ import annotations

import shutil
from pathlib import Path

from spruce.compile.buildpacks import BuildpackError, _download, stage_builtin

from .descriptor import Group, GroupEntry
from .lifecycle import LifecycleError, StagedBuildpack, load_buildpack

CNB_DIR = Path(__file__).parent / "buildpacks"

# Heroku's builder order (python ... dotnet, nodejs last), each language with an optional
# procfile; then static sites (Heroku's builder leaves those to project.toml; Spruce detects
# them as Cedar's static buildpack does), then a Procfile-only group, as Cedar's detection ends
# with the procfile buildpack.
BUILDER_ORDER: tuple[Group, ...] = tuple(
    (GroupEntry(f"heroku/{lang}"), GroupEntry("heroku/procfile", optional=True))
    for lang in ("python", "dotnet", "nodejs", "static-web-server")
) + ((GroupEntry("heroku/procfile"),),)


def builtin_dirs() -> dict[str, Path]:
    """id -> directory of each built-in CNB."""
    out: dict[str, Path] = {}
    for toml in sorted(CNB_DIR.glob("*/buildpack.toml")):
        out[load_buildpack(toml.parent).id] = toml.parent
    return out


class BuildpackSet:
    """The buildpacks a build may use, staged (copied) under `<work>/buildpacks/<id>/<version>`."""

    def __init__(self, staging: Path, download_cache: Path, app_dir: Path) -> None:
        self.staging = staging
        self.download_cache = download_cache
        self.app_dir = app_dir
        self._builtins = builtin_dirs()
        self._by_id: dict[str, list[StagedBuildpack]] = {}

    def _stage(self, source: Path, builtin: bool) -> StagedBuildpack:
        bp = load_buildpack(source)
        dest = self.staging / bp.key / bp.desc.version
        if not dest.exists():
            if builtin:
                stage_builtin(source, dest)
            else:
                shutil.copytree(source, dest, symlinks=True)
            for exe in (dest / "bin").glob("*"):
                if exe.is_file():
                    exe.chmod(exe.stat().st_mode | 0o755)
        staged = load_buildpack(dest)
        self._by_id.setdefault(staged.id, []).append(staged)
        if staged.desc.composite:
            for group in staged.desc.order:
                for entry in group:
                    self.lookup(entry.id, entry.version)
        return staged

    async def add_reference(self, ref: str) -> StagedBuildpack:
        """A user's reference: an id (`heroku/python`), `urn:cnb:...:<id>`, a path, or a URL."""
        text = ref.strip()
        for prefix in ("urn:cnb:builder:", "urn:cnb:registry:", "urn:buildpack:"):
            if text.startswith(prefix):
                text = text[len(prefix) :].split("@", 1)[0]
                return self.lookup(text, None)
        if text.startswith("docker://") or text.startswith("docker:"):
            raise LifecycleError(f"buildpack {ref}: image references are not supported here", 12)
        if text.startswith(("http://", "https://")):
            try:
                path = await _download(text, self.download_cache, 60.0)
            except BuildpackError as exc:
                raise LifecycleError(str(exc), 12) from None
            return self._stage(path, False)
        local = Path(text.removeprefix("file://")).expanduser()
        if not local.is_absolute():
            local = self.app_dir / local
        if (local / "buildpack.toml").is_file():
            return self._stage(local, False)
        return self.lookup(text.split("@", 1)[0], text.split("@", 1)[1] if "@" in text else None)

    def lookup(self, bp_id: str, version: str | None) -> StagedBuildpack:
        for staged in self._by_id.get(bp_id, []):
            if version is None or staged.desc.version == version:
                return staged
        if bp_id in self._builtins:
            staged = self._stage(self._builtins[bp_id], True)
            if version is None or staged.desc.version == version:
                return staged
            raise LifecycleError(
                f"buildpack {bp_id}@{version} not found (built-in version {staged.desc.version})",
                12,
            )
        raise LifecycleError(
            f"buildpack {bp_id!r} not found: use a built-in ({', '.join(sorted(self._builtins))}), "
            "a directory with buildpack.toml, or an http(s) URL of a .tgz",
            12,
        )
