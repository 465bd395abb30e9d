"""The lifecycle phases before export: detect, analyze, restore and build (Platform API 0.15).

Spruce has no lifecycle binary: this module is the lifecycle. It runs real buildpack
executables in the build sandbox and follows the Buildpack spec (API 0.10-0.12) for the build
plan, layer types and metadata, env files, launch.toml, build.toml and store.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .descriptor import BuildpackDescriptor, DescriptorError, Group
from .launcher import POSIX_PATH_VARS, apply_layers_env, escape_id
from .plan import DetectResult, PlanError, Resolution, parse_plan, resolve
from .sandbox import BUILDPACKS_DIR, LAYERS_DIR, PLATFORM_DIR, BuildSandbox, run

Output = Callable[[str], None]
RESERVED_LAYERS = {"build", "launch", "store"}
_PROCESS_TYPE = re.compile(r"^[A-Za-z0-9._-]+$")
SCRATCH = (
    ".cnb"  # under <layers>: plan files; never a buildpack's directory (ids have no dot start)
)


class LifecycleError(Exception):
    """A phase failed; `message` is user-facing, `code` is the Platform spec's exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class StagedBuildpack:
    desc: BuildpackDescriptor

    @property
    def id(self) -> str:
        return self.desc.id

    @property
    def key(self) -> str:
        return escape_id(self.desc.id)

    @property
    def sandbox_dir(self) -> str:
        return f"{BUILDPACKS_DIR}/{self.key}/{self.desc.version}"


@dataclass
class LayerMeta:
    name: str
    launch: bool = False
    build: bool = False
    cache: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def toml(self, with_types: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"metadata": self.metadata} if self.metadata else {}
        if with_types:
            out["types"] = {"launch": self.launch, "build": self.build, "cache": self.cache}
        return out


@dataclass
class BuildpackOutput:
    bp: StagedBuildpack
    layers: dict[str, LayerMeta] = field(default_factory=dict)
    processes: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    slices: list[list[str]] = field(default_factory=list)
    store: dict[str, Any] | None = None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LifecycleError(f"{what} is not valid TOML: {exc}", 52) from None


def write_toml(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tomli_w.dumps(dict(data)).encode())


def expand_order(
    order: list[Group], lookup: Callable[[str, str | None], StagedBuildpack]
) -> list[list[tuple[StagedBuildpack, bool]]]:
    """Resolve composite buildpacks into groups of component buildpacks (depth first)."""
    groups: list[list[tuple[StagedBuildpack, bool]]] = []
    for group in order:
        partials: list[list[tuple[StagedBuildpack, bool]]] = [[]]
        for entry in group:
            bp = lookup(entry.id, entry.version)
            if bp.desc.composite:
                inner = expand_order(list(bp.desc.order), lookup)
                inner = [[(m, opt or entry.optional) for m, opt in g] for g in inner]
                partials = [p + g for p in partials for g in inner]
            else:
                partials = [p + [(bp, entry.optional)] for p in partials]
        groups.extend(partials)
    return groups


class Lifecycle:
    def __init__(
        self,
        sandbox: BuildSandbox,
        base_env: Mapping[str, str],
        user_env: Mapping[str, str],
        output: Output,
        target: Mapping[str, str],
        timeout: float | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.base_env = dict(base_env)
        self.user_env = dict(user_env)
        self.output = output
        self.target = dict(target)  # CNB_TARGET_* values
        self.timeout = timeout
        self.layers = sandbox.layers

    # -- environment ------------------------------------------------------------------------
    def _env(
        self, bp: StagedBuildpack, extra: Mapping[str, str], build_env: dict[str, str]
    ) -> dict[str, str]:
        env = dict(build_env)
        if not bp.desc.clear_env:
            for name, value in self.user_env.items():
                if name in POSIX_PATH_VARS and env.get(name):
                    env[name] = value + os.pathsep + env[name]
                else:
                    env[name] = value
        env.update(self.target)
        env.update(
            CNB_BUILDPACK_DIR=bp.sandbox_dir,
            CNB_PLATFORM_DIR=PLATFORM_DIR,
            CNB_EXEC_ENV=self.base_env.get("CNB_EXEC_ENV", "production"),
        )
        env.update(extra)
        return env

    # -- detect ---------------------------------------------------------------------------------
    async def _detect_one(
        self, bp: StagedBuildpack, optional: bool
    ) -> tuple[DetectResult, int, list[str]]:
        scratch = self.layers / SCRATCH / "detect" / bp.key
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        self.sandbox.give(scratch)
        plan_path = f"{LAYERS_DIR}/{SCRATCH}/detect/{bp.key}/plan.toml"
        env = self._env(bp, {"CNB_BUILD_PLAN_PATH": plan_path}, self.base_env)
        lines: list[str] = []
        argv = self.sandbox.argv([f"{bp.sandbox_dir}/bin/detect"], app_writable=False)
        code = await run(argv, env, lines.append, self.timeout)
        if code != 0:
            return DetectResult(bp.id, optional, False), code, lines
        try:
            data = read_toml(scratch / "plan.toml", f"{bp.id} detect plan")
            alternatives = parse_plan(data, f"{bp.id} detect plan")
        except (LifecycleError, PlanError) as exc:
            lines.append(str(exc))
            return DetectResult(bp.id, optional, False), 1, lines
        return DetectResult(bp.id, optional, True, alternatives), 0, lines

    async def detect(
        self, groups: list[list[tuple[StagedBuildpack, bool]]]
    ) -> tuple[list[StagedBuildpack], Resolution]:
        errored = False
        for group in groups:
            results: list[DetectResult] = []
            failed = False
            for bp, optional in group:
                if not bp.desc.supports(
                    self.target.get("CNB_TARGET_OS", "linux"),
                    self.target.get("CNB_TARGET_ARCH", "amd64"),
                ):
                    results.append(DetectResult(bp.id, optional, False))
                    if not optional:
                        failed = True
                        break
                    continue
                result, code, lines = await self._detect_one(bp, optional)
                results.append(result)
                if code not in (0, 100):
                    errored = True
                    self.output(f"======== Output: {bp.id}@{bp.desc.version} ========")
                    for line in lines:
                        self.output(line)
                    self.output(f"err:  {bp.id}@{bp.desc.version} ({code})")
                if not result.passed and not optional:
                    failed = True
                    break
            if failed:
                continue
            resolution = resolve(results)
            if resolution is None:
                continue
            by_id = {bp.id: bp for bp, _ in group}
            chosen = [by_id[i] for i in resolution.group]
            self.output(f"{len(chosen)} of {len(group)} buildpacks participating")
            width = max(len(bp.id) for bp in chosen)
            for bp in chosen:
                self.output(f"{bp.id.ljust(width)} {bp.desc.version}")
            shutil.rmtree(self.layers / SCRATCH / "detect", ignore_errors=True)
            return chosen, resolution
        if errored:
            raise LifecycleError("failed to detect: buildpack(s) failed with err", 21)
        self.output("ERROR: No buildpack groups passed detection.")
        self.output("ERROR: Please check that you are running against the correct path.")
        raise LifecycleError("failed to detect: no buildpacks participating", 20)

    # -- analyze and restore ----------------------------------------------------------------------
    def analyze(self, group: list[StagedBuildpack], previous: Mapping[str, Any] | None) -> None:
        """Restore <layer>.toml of launch-only layers and store.toml from the previous image."""
        if not previous:
            return
        by_key = {b.get("key"): b for b in previous.get("buildpacks", []) if isinstance(b, dict)}
        for bp in group:
            record = by_key.get(bp.id)
            if record is None:
                continue
            bp_dir = self.layers / bp.key
            bp_dir.mkdir(parents=True, exist_ok=True)
            for name, layer in (record.get("layers") or {}).items():
                if layer.get("launch") and not layer.get("cache") and not layer.get("build"):
                    data = layer.get("data") or {}
                    write_toml(bp_dir / f"{name}.toml", {"metadata": data} if data else {})
            store = record.get("store")
            if isinstance(store, dict) and store:
                write_toml(bp_dir / "store.toml", store)

    def restore(self, group: list[StagedBuildpack], cache_layers: Path) -> list[str]:
        """Move cached layers (content and metadata without [types]) into place."""
        restored: list[str] = []
        for bp in group:
            source = cache_layers / bp.key
            if not source.is_dir():
                continue
            bp_dir = self.layers / bp.key
            bp_dir.mkdir(parents=True, exist_ok=True)
            for toml_file in sorted(source.glob("*.toml")):
                name = toml_file.stem
                content = source / name
                if not content.is_dir():
                    continue
                meta = read_toml(toml_file, f"cached {bp.id}:{name}")
                _move(content, bp_dir / name)
                data = meta.get("metadata") or {}
                write_toml(bp_dir / f"{name}.toml", {"metadata": data} if data else {})
                restored.append(f"{bp.id}:{name}")
                self.output(f'Restoring data for "{bp.id}:{name}" from cache')
        return restored

    # -- build ------------------------------------------------------------------------------------
    async def build(
        self, group: list[StagedBuildpack], resolution: Resolution
    ) -> list[BuildpackOutput]:
        outputs: list[BuildpackOutput] = []
        build_layers: list[list[str]] = []  # host paths of earlier buildpacks' build layers
        for bp in group:
            bp_dir = self.layers / bp.key
            bp_dir.mkdir(parents=True, exist_ok=True)
            plan_file = self.layers / SCRATCH / "plan" / bp.key / "plan.toml"
            write_toml(plan_file, {"entries": resolution.plan_for(bp.id)})
            env = dict(self.base_env)
            apply_layers_env(env, build_layers, "build")
            for var in POSIX_PATH_VARS:  # the layers were read on the host, run at /layers
                if var in env:
                    env[var] = env[var].replace(str(self.layers), LAYERS_DIR)
            env = self._env(
                bp,
                {
                    "CNB_LAYERS_DIR": f"{LAYERS_DIR}/{bp.key}",
                    "CNB_BP_PLAN_PATH": f"{LAYERS_DIR}/{SCRATCH}/plan/{bp.key}/plan.toml",
                },
                env,
            )
            self.sandbox.give(bp_dir, *bp_dir.glob("*.toml"))
            argv = self.sandbox.argv([f"{bp.sandbox_dir}/bin/build"], app_writable=True)
            code = await run(argv, env, self.output, self.timeout)
            if code != 0:
                raise LifecycleError(
                    f"failed to build: exit status {code} (buildpack {bp.id}@{bp.desc.version})",
                    51,
                )
            out = self._collect(bp)
            build_toml = read_toml(bp_dir / "build.toml", f"{bp.id} build.toml")
            unmet = {u.get("name") for u in build_toml.get("unmet", []) if isinstance(u, dict)}
            resolution.settle(bp.id, {str(u) for u in unmet if u})
            build_layers.append(
                [str(bp_dir / name) for name, layer in sorted(out.layers.items()) if layer.build]
            )
            outputs.append(out)
        return outputs

    def _collect(self, bp: StagedBuildpack) -> BuildpackOutput:
        bp_dir = self.layers / bp.key
        out = BuildpackOutput(bp)
        for toml_file in sorted(bp_dir.glob("*.toml")):
            name = toml_file.stem
            if name in ("launch", "build", "store"):
                continue
            data = read_toml(toml_file, f"{bp.id}:{name} layer metadata")
            types = data.get("types") or {}
            meta = data.get("metadata") or {}
            if not isinstance(types, dict) or not isinstance(meta, dict):
                raise LifecycleError(
                    f"{bp.id}: {name}.toml [types] and [metadata] must be tables", 52
                )
            layer = LayerMeta(
                name,
                bool(types.get("launch")),
                bool(types.get("build")),
                bool(types.get("cache")),
                meta,
            )
            if not (layer.launch or layer.build or layer.cache):
                content = bp_dir / name
                if content.is_dir():  # ignored layer: hide it from later buildpacks
                    target = bp_dir / f"{name}.ignore"
                    shutil.rmtree(target, ignore_errors=True)
                    content.rename(target)
                continue
            out.layers[name] = layer
        for name in RESERVED_LAYERS:
            if (bp_dir / name).is_dir():
                raise LifecycleError(f"{bp.id}: a layer may not be named {name!r}", 52)
        launch = read_toml(bp_dir / "launch.toml", f"{bp.id} launch.toml")
        seen: set[str] = set()
        for proc in launch.get("processes", []):
            kind = proc.get("type") if isinstance(proc, dict) else None
            if not isinstance(kind, str) or not _PROCESS_TYPE.match(kind) or kind in seen:
                raise LifecycleError(
                    f"{bp.id}: launch.toml has an invalid process type {kind!r}", 52
                )
            command = proc.get("command")
            if isinstance(command, str):
                command = [command]
            if (
                not isinstance(command, list)
                or not command
                or not all(isinstance(c, str) for c in command)
            ):
                raise LifecycleError(f"{bp.id}: process {kind!r} needs a command list", 52)
            seen.add(kind)
            out.processes.append(
                {
                    "type": kind,
                    "command": command,
                    "args": [str(a) for a in proc.get("args", [])],
                    "direct": True,
                    "default": bool(proc.get("default", False)),
                    "working-dir": str(proc.get("working-dir", "")),
                    "exec-env": [str(e) for e in proc.get("exec-env", ["*"])] or ["*"],
                    "buildpack-id": bp.id,
                }
            )
        for label in launch.get("labels", []):
            if isinstance(label, dict) and isinstance(label.get("key"), str):
                out.labels[label["key"]] = str(label.get("value", ""))
        for item in launch.get("slices", []):
            if isinstance(item, dict):
                out.slices.append([str(p) for p in item.get("paths", [])])
        store = read_toml(bp_dir / "store.toml", f"{bp.id} store.toml")
        out.store = store or None
        return out


def _move(source: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    try:
        os.rename(source, dest)
    except OSError:  # another filesystem: copy
        shutil.copytree(source, dest, symlinks=True)
        shutil.rmtree(source)


def merged_processes(outputs: list[BuildpackOutput]) -> tuple[list[dict[str, Any]], str | None]:
    """Processes of all buildpacks (later types replace earlier ones) and the default type."""
    by_type: dict[str, dict[str, Any]] = {}
    default: str | None = None
    for out in outputs:
        for proc in out.processes:
            by_type[proc["type"]] = proc
            if proc["default"]:
                default = proc["type"]
            elif default == proc["type"]:
                default = None
    return list(by_type.values()), default


def load_buildpack(directory: Path) -> StagedBuildpack:
    try:
        return StagedBuildpack(BuildpackDescriptor.load(directory))
    except DescriptorError as exc:
        raise LifecycleError(str(exc), 12) from None
