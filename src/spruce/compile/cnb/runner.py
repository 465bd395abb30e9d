"""The Fir build runner: source in, OCI image in a registry out (the CNB counterpart of
spruce.compile.runner.run_build).

Phases as the Platform spec orders them, with output as Heroku's Fir builds show it
(`===> ANALYZING` ... `===> EXPORTING`, buildpack output in between):
  analyze: read the previous image of the target tag (layer metadata, store.toml);
  detect:  the first order group that passes (request buildpacks > project.toml > builder);
  restore: cached layers from the app's cache dir;
  build:   each buildpack's bin/build in the build sandbox;
  export:  the image, pushed blob by blob (only what the registry lacks), then the cache.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spruce.compile.oci import ImageRef, RegistryClient, RegistryError
from spruce.compile.runner import BuildTimeout, passthrough_env, pyenv_pin
from spruce.services.model import BuildFailed

from .base import build_base_image
from .builtins import BUILDER_ORDER, BuildpackSet
from .descriptor import DescriptorError, GroupEntry, ProjectDescriptor
from .export import (
    Exporter,
    ExportError,
    LayerMemo,
    PreviousImage,
    export,
    fingerprint,
    load_previous,
)
from .lifecycle import (
    BuildpackOutput,
    Lifecycle,
    LifecycleError,
    StagedBuildpack,
    expand_order,
    write_toml,
)
from .sandbox import HOME_DIR, BuildSandbox, SandboxUnavailable
from .source import copy_source

Output = Callable[[str], None]


@dataclass
class CnbBuildRequest:
    source_dir: Path  # checked-out app tree; copied, never modified
    work_dir: Path  # scratch space for this build (emptied first)
    cache_dir: Path  # the app's CNB cache, kept between builds
    image: ImageRef  # target tag, e.g. 127.0.0.1:5000/apps/myapp:latest
    registry: RegistryClient  # a client of image.registry (credentials stay with it)
    env: dict[str, str] = field(default_factory=dict)  # config vars -> <platform>/env/
    buildpacks: list[str] = field(default_factory=list)  # empty: project.toml, else builder
    source_version: str | None = None  # commit sha (project metadata, SOURCE_VERSION)
    timeout: float = 15 * 60.0
    run_as: tuple[int, int] | None = None  # build user (uid, gid) when Spruce is root
    previous_image: ImageRef | None = None  # default: the target tag
    buildpack_cache_dir: Path | None = None  # downloaded buildpacks (default: cache_dir/..)
    keep_work_dir: bool = False


@dataclass
class CnbBuildResult:
    image: str  # registry/repo@sha256:...
    digest: str
    process_types: dict[str, dict[str, Any]]  # Heroku's oci-image process_types
    buildpacks: list[dict[str, str]]  # [{id, version, homepage}]
    base_image_name: str
    base_top_layer: str
    architecture: str
    uploaded_blobs: list[str] = field(default_factory=list)
    duration: float = 0.0


async def _order(
    req: CnbBuildRequest, project: ProjectDescriptor | None, bps: BuildpackSet
) -> list[list[tuple[StagedBuildpack, bool]]]:
    if req.buildpacks:
        return [[(await bps.add_reference(ref), False) for ref in req.buildpacks]]
    if project is not None and project.group:
        group = []
        for item in [*project.pre, *project.group, *project.post]:
            ref = item.uri or item.id or ""
            if item.uri is None and item.version:
                ref = f"{item.id}@{item.version}"
            group.append((await bps.add_reference(ref), False))
        return [group]
    order = list(BUILDER_ORDER)
    if project is not None and (project.pre or project.post):
        pre = [GroupEntry(p.id or "", p.version) for p in project.pre]
        post = [GroupEntry(p.id or "", p.version) for p in project.post]
        order = [tuple(pre) + g + tuple(post) for g in order]
    return expand_order(order, bps.lookup)


def _project_metadata(req: CnbBuildRequest, project: ProjectDescriptor | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if req.source_version:
        meta["source"] = {"type": "git", "version": {"commit": req.source_version}}
    if project is not None:
        info = {k: v for k, v in project.project.items() if k in ("id", "name", "version")}
        if info:
            meta.setdefault("source", {"type": "project"})["metadata"] = info
    return meta


def _save_cache(outputs: list[BuildpackOutput], layers: Path, cache_layers: Path) -> list[str]:
    """Keep cache = true layers (moved, not copied) for the next build."""
    lines = []
    fresh = cache_layers.with_name("layers.new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    for out in outputs:
        for name, meta in sorted(out.layers.items()):
            content = layers / out.bp.key / name
            if not meta.cache or not content.is_dir():
                continue
            dest = fresh / out.bp.key
            dest.mkdir(exist_ok=True)
            write_toml(dest / f"{name}.toml", meta.toml())
            os.rename(content, dest / name) if _same_fs(content, dest) else shutil.copytree(
                content, dest / name, symlinks=True
            )
            lines.append(f"Adding cache layer '{out.bp.id}:{name}'")
    shutil.rmtree(cache_layers, ignore_errors=True)
    os.rename(fresh, cache_layers)
    return lines


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


async def _build(req: CnbBuildRequest, emit: Output) -> CnbBuildResult:
    work, cache = req.work_dir, req.cache_dir
    if work.exists():
        await asyncio.to_thread(shutil.rmtree, work)
    dirs = {name: work / name for name in ("workspace", "layers", "platform", "buildpacks", "home")}
    for d in [*dirs.values(), cache / "blobs"]:
        d.mkdir(parents=True, exist_ok=True)
    try:
        project = ProjectDescriptor.load(req.source_dir)
    except DescriptorError as exc:
        raise BuildFailed(str(exc)) from None
    await asyncio.to_thread(copy_source, req.source_dir, dirs["workspace"], project)
    env_dir = dirs["platform"] / "env"
    env_dir.mkdir()
    user_env = dict(project.build_env if project else {})
    user_env.update(req.env)
    for name, value in user_env.items():
        if not name or "/" in name or name in (".", ".."):
            raise BuildFailed(f"invalid config var name {name!r}")
        (env_dir / name).write_text(value)
    try:
        sandbox = BuildSandbox(
            dirs["workspace"], dirs["layers"], dirs["platform"], dirs["buildpacks"], dirs["home"],
            run_as=req.run_as,
        )  # fmt: skip
    except SandboxUnavailable as exc:
        raise BuildFailed(str(exc)) from None
    bps = BuildpackSet(
        dirs["buildpacks"], req.buildpack_cache_dir or cache.parent / ".buildpacks", req.source_dir
    )
    base = await asyncio.to_thread(build_base_image, cache / "blobs")
    base_env = passthrough_env()
    base_env.update(base.config.env_map(), HOME=HOME_DIR, CNB_EXEC_ENV="production")
    for name, value in pyenv_pin().items():  # not the app's .python-version (runner.py)
        base_env.setdefault(name, value)
    if req.source_version:
        base_env["SOURCE_VERSION"] = req.source_version
    target = {
        "CNB_TARGET_OS": base.config.os,
        "CNB_TARGET_ARCH": base.config.architecture,
        "CNB_TARGET_DISTRO_NAME": base.config.labels["io.buildpacks.base.distro.name"],
        "CNB_TARGET_DISTRO_VERSION": base.config.labels["io.buildpacks.base.distro.version"],
    }
    life = Lifecycle(sandbox, base_env, user_env, emit, target, req.timeout)
    sandbox.give(*dirs.values(), tree=True)

    emit("===> ANALYZING")
    previous_ref = req.previous_image or req.image
    previous: PreviousImage | None = None
    try:
        previous = await load_previous(req.registry, previous_ref)
    except RegistryError as exc:
        emit(f"Warning: cannot read the previous image ({exc}); building without it")
    if previous is None:
        emit(f'Previous image with name "{previous_ref}" not found')
    emit("===> DETECTING")
    groups = await _order(req, project, bps)
    group, resolution = await life.detect(groups)
    emit("===> RESTORING")
    life.analyze(group, previous.metadata if previous else None)
    life.restore(group, cache / "layers")
    sandbox.give(dirs["layers"], tree=True)
    emit("===> BUILDING")
    outputs = await life.build(group, resolution)
    emit("===> EXPORTING")
    memo = LayerMemo.load(cache / "layers.json")
    exporter = Exporter(dirs["layers"], dirs["workspace"], cache / "blobs", memo, emit)
    req.registry.uploads.clear()
    digest, config, types, _default = await export(
        exporter, outputs, previous, base, req.registry, req.image, _project_metadata(req, project)
    )
    for line in await asyncio.to_thread(_save_cache, outputs, dirs["layers"], cache / "layers"):
        emit(line)
    memo.save()
    _gc_blobs(cache / "blobs", {layer.digest for layer in exporter.layers} | {base.layer.digest})
    return CnbBuildResult(
        image=str(req.image.with_tag(None).with_digest(digest)),
        digest=digest,
        process_types=types,
        buildpacks=[
            {"id": o.bp.id, "version": o.bp.desc.version, "homepage": o.bp.desc.homepage}
            for o in outputs
        ],
        base_image_name=base.name,
        base_top_layer=base.layer.diff_id,
        architecture=config.architecture,
        uploaded_blobs=list(req.registry.uploads),
    )


def _gc_blobs(blobs: Path, keep: set[str]) -> None:
    names = {d.replace(":", "-") for d in keep}
    for blob in blobs.iterdir():
        if blob.name not in names and not blob.name.startswith("."):
            blob.unlink(missing_ok=True)


async def run_build(req: CnbBuildRequest, emit: Output) -> CnbBuildResult:
    """Build `req.source_dir` into an image pushed to `req.image`; BuildFailed on failure
    (its message already emitted, in the lifecycle's `ERROR: ...` form)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(req.timeout):
            result = await _build(req, emit)
    except TimeoutError:
        message = f"Build timed out after {req.timeout:g} seconds and was stopped."
        emit(f"ERROR: {message}")
        raise BuildTimeout(message) from None
    except (LifecycleError, ExportError) as exc:
        emit(f"ERROR: {exc.message}")
        raise BuildFailed(exc.message) from None
    except RegistryError as exc:
        emit(f"ERROR: failed to export: {exc}")
        raise BuildFailed(f"failed to export: {exc}") from None
    except BuildFailed as exc:
        emit(f"ERROR: {exc.message}")
        raise
    except OSError as exc:
        message = f"Build failed: {exc.strerror or exc}"
        emit(f"ERROR: {message}")
        raise BuildFailed(message) from exc
    finally:
        if not req.keep_work_dir:
            await asyncio.to_thread(shutil.rmtree, req.work_dir, True)
    result.duration = time.monotonic() - started
    return result


__all__ = ["CnbBuildRequest", "CnbBuildResult", "fingerprint", "run_build"]
