"""The export phase: an OCI image from the launch layers, the app and the launcher.

Layer order (base first): the stack's base layer, each buildpack's launch layers (build
order, then layer name), the app layers (slices first), the launcher, the config
(`/layers/config/metadata.toml`) and the `/cnb/process/<type>` links. Every layer is
reproducible, and a layer whose tree has not changed since the last build (same
fingerprint) is not even re-archived. The registry only receives blobs it lacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from spruce.compile.oci import (
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    Descriptor,
    ImageConfig,
    ImageRef,
    LayerWriter,
    Manifest,
    RegistryClient,
)

from .base import BaseImage
from .launcher import PROCESS_DIR
from .lifecycle import BuildpackOutput, LayerMeta, merged_processes
from .sandbox import APP_DIR, LAYERS_DIR

Output = Callable[[str], None]
CNB_USER = (1000, 1000)
LAUNCHER_PATH = "/cnb/lifecycle/launcher"
LAUNCHER_SOURCE = Path(__file__).with_name("launcher.py")
LAUNCHER_VERSION = "spruce-0.1"


@dataclass(frozen=True)
class BuiltLayer:
    digest: str
    diff_id: str
    size: int
    path: Path | None  # local blob, or None when only the registry has it

    def descriptor(self) -> Descriptor:
        return Descriptor(MEDIA_LAYER_GZIP, self.digest, self.size)


@dataclass
class PreviousImage:
    manifest: Manifest
    config: ImageConfig

    @property
    def metadata(self) -> dict[str, Any]:
        raw = self.config.labels.get("io.buildpacks.lifecycle.metadata", "")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def by_diff_id(self, diff_id: str) -> BuiltLayer | None:
        for desc, known in zip(self.manifest.layers, self.config.diff_ids, strict=False):
            if known == diff_id:
                return BuiltLayer(desc.digest, diff_id, desc.size, None)
        return None

    def layer(self, bp_id: str, name: str) -> BuiltLayer | None:
        for bp in self.metadata.get("buildpacks", []):
            if isinstance(bp, dict) and bp.get("key") == bp_id:
                sha = (bp.get("layers") or {}).get(name, {}).get("sha")
                return self.by_diff_id(sha) if isinstance(sha, str) else None
        return None


async def load_previous(client: RegistryClient, ref: ImageRef) -> PreviousImage | None:
    got = await client.get_manifest(ref.repository, ref.reference)
    if got is None:
        return None
    manifest = Manifest.from_bytes(got[0], got[1])
    config = ImageConfig.from_bytes(await client.get_blob(ref.repository, manifest.config.digest))
    return PreviousImage(manifest, config)


def fingerprint(path: Path) -> str:
    """A cheap identity of a tree: names, types, modes, sizes, mtimes, link targets."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            full = os.path.join(root, name)
            st = os.lstat(full)
            link = os.readlink(full) if os.path.islink(full) else ""
            rel = os.path.relpath(full, path)
            digest.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n".encode())
    return digest.hexdigest()


@dataclass
class LayerMemo:
    """fingerprint -> built layer, kept in the app's cache dir between builds."""

    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> LayerMemo:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        return cls(path, data if isinstance(data, dict) else {})

    def get(self, key: str, print_: str, blobs: Path) -> BuiltLayer | None:
        entry = self.entries.get(key)
        if not entry or entry.get("fingerprint") != print_:
            return None
        blob = blobs / entry["digest"].replace(":", "-")
        self.used.add(key)
        return BuiltLayer(
            entry["digest"], entry["diff_id"], entry["size"], blob if blob.exists() else None
        )

    def put(self, key: str, print_: str, layer: BuiltLayer) -> None:
        self.entries[key] = {
            "fingerprint": print_, "digest": layer.digest, "diff_id": layer.diff_id,
            "size": layer.size,
        }  # fmt: skip
        self.used.add(key)

    def save(self) -> None:
        kept = {k: v for k, v in self.entries.items() if k in self.used}
        self.path.write_text(json.dumps(kept, sort_keys=True))


class Exporter:
    def __init__(
        self,
        layers_dir: Path,
        workspace: Path,
        blobs: Path,
        memo: LayerMemo,
        output: Output,
    ) -> None:
        self.layers_dir = layers_dir
        self.workspace = workspace
        self.blobs = blobs
        self.memo = memo
        self.output = output
        self.layers: list[BuiltLayer] = []

    def _tree_layer(self, key: str, source: Path, name: str) -> BuiltLayer:
        print_ = fingerprint(source)
        hit = self.memo.get(key, print_, self.blobs)
        if hit is not None and hit.path is not None:
            return hit
        writer = LayerWriter(self.blobs)
        for parent in _parents(name):
            writer.add_dir(parent, owner=(0, 0))
        writer.add_tree(source, name, owner=CNB_USER)
        blob = writer.finish()
        built = BuiltLayer(blob.digest, blob.diff_id, blob.size, blob.path)
        self.memo.put(key, print_, built)
        return built

    def launch_layers(
        self, outputs: list[BuildpackOutput], previous: PreviousImage | None
    ) -> dict[str, dict[str, Any]]:
        """Add the launch layers; the lifecycle metadata's `buildpacks` entries come back."""
        records: dict[str, dict[str, Any]] = {}
        for out in outputs:
            layers: dict[str, Any] = {}
            for name in sorted(out.layers):
                meta: LayerMeta = out.layers[name]
                if not meta.launch:
                    continue
                label = f"{out.bp.id}:{name}"
                content = self.layers_dir / out.bp.key / name
                old = previous.layer(out.bp.id, name) if previous else None
                if content.is_dir():
                    built = self._tree_layer(label, content, f"layers/{out.bp.key}/{name}")
                elif old is not None:
                    built = old
                else:
                    raise ExportError(
                        f"failed to export: layer '{label}' has launch = true but neither a "
                        "directory nor a layer in the previous image"
                    )
                reused = old is not None and old.diff_id == built.diff_id
                self.output(f"{'Reusing' if reused else 'Adding'} layer '{label}'")
                self.layers.append(built)
                layers[name] = {
                    "sha": built.diff_id, "data": meta.metadata, "launch": True,
                    "build": meta.build, "cache": meta.cache,
                }  # fmt: skip
            record: dict[str, Any] = {
                "key": out.bp.id,
                "version": out.bp.desc.version,
                "layers": layers,
            }
            if out.store:
                record["store"] = out.store
            records[out.bp.id] = record
        return records

    def app_layers(
        self, outputs: list[BuildpackOutput], previous: PreviousImage | None
    ) -> list[str]:
        slices = [paths for out in outputs for paths in out.slices]
        groups = _slice_files(self.workspace, slices)
        old = {a.get("sha") for a in (previous.metadata.get("app", []) if previous else [])}
        diff_ids: list[str] = []
        for files in groups:
            writer = LayerWriter(self.blobs)
            writer.add_dir("workspace", owner=CNB_USER)
            for rel, whole in files:
                full = self.workspace / rel
                if whole and full.is_dir() and not full.is_symlink():
                    writer.add_tree(full, f"workspace/{rel}", owner=CNB_USER)
                else:
                    writer.add_path(full, f"workspace/{rel}", CNB_USER)
            blob = writer.finish()
            built = BuiltLayer(blob.digest, blob.diff_id, blob.size, blob.path)
            self.layers.append(built)
            diff_ids.append(built.diff_id)
        reused = sum(1 for d in diff_ids if d in old)
        if reused:
            self.output(f"Reusing {reused}/{len(diff_ids)} app layer(s)")
        if len(diff_ids) - reused:
            self.output(f"Adding {len(diff_ids) - reused}/{len(diff_ids)} app layer(s)")
        return diff_ids

    def data_layer(
        self,
        label: str,
        files: list[tuple[str, bytes, int]],
        links: list[tuple[str, str]],
        previous_sha: str | None,
    ) -> BuiltLayer:
        writer = LayerWriter(self.blobs)
        for name, data, mode in files:
            for parent in _parents(name):
                writer.add_dir(parent)
            writer.add_data(name, data, mode)
        for name, target in links:
            for parent in _parents(name):
                writer.add_dir(parent)
            writer.add_symlink(name, target)
        blob = writer.finish()
        built = BuiltLayer(blob.digest, blob.diff_id, blob.size, blob.path)
        self.output(f"{'Reusing' if previous_sha == built.diff_id else 'Adding'} layer '{label}'")
        self.layers.append(built)
        return built


class ExportError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _parents(name: str) -> list[str]:
    parts = name.strip("/").split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go filepath.Match semantics: `*` and `?` never cross a `/`."""
    out = ""
    for chunk in re.split(r"(\*|\?|\[[^\]]*\])", pattern):
        if chunk == "*":
            out += "[^/]*"
        elif chunk == "?":
            out += "[^/]"
        elif chunk.startswith("[") and chunk.endswith("]"):
            out += "[" + chunk[1:-1].replace("^", "\\^").replace("!", "^", 1) + "]"
        else:
            out += re.escape(chunk)
    return re.compile(f"^{out}$")


def _slice_files(workspace: Path, slices: list[list[str]]) -> list[list[tuple[str, bool]]]:
    """Split the app into layers: each slice claims the paths its globs match (a directory
    with all below it), in order; one last layer holds every path left, entry by entry."""
    everything: list[str] = []
    for root, dirs, files in os.walk(workspace):
        dirs.sort()
        rel_root = os.path.relpath(root, workspace)
        for name in sorted([*dirs, *files]):
            everything.append(name if rel_root == "." else f"{rel_root}/{name}")
    claimed: set[str] = set()

    def covered(rel: str) -> bool:
        parts = rel.split("/")
        return any("/".join(parts[:i]) in claimed for i in range(1, len(parts) + 1))

    groups: list[list[tuple[str, bool]]] = []
    for paths in slices:
        patterns = [_glob_regex(p.removeprefix(APP_DIR + "/").lstrip("/")) for p in paths]
        taken = [r for r in everything if not covered(r) and any(p.match(r) for p in patterns)]
        claimed.update(taken)
        if taken:
            groups.append([(r, True) for r in taken])
    groups.append([(r, False) for r in everything if not covered(r)])
    return groups


def metadata_toml(outputs: list[BuildpackOutput]) -> tuple[bytes, list[dict[str, Any]], str | None]:
    processes, default = merged_processes(outputs)
    doc: dict[str, Any] = {
        "buildpacks": [
            {"id": o.bp.id, "version": o.bp.desc.version, "api": o.bp.desc.api} for o in outputs
        ],
        "processes": [
            {
                "type": p["type"],
                "command": p["command"],
                "args": p["args"],
                "direct": True,
                "working-dir": p["working-dir"] or APP_DIR,
                "exec-env": p["exec-env"],
                "buildpack-id": p["buildpack-id"],
            }
            for p in processes
        ],  # fmt: skip
        "slices": [{"paths": paths} for o in outputs for paths in o.slices],
    }
    if default:
        doc["buildpack-default-process-type"] = default
    return tomli_w.dumps(doc).encode(), processes, default


def process_types(
    processes: list[dict[str, Any]], default: str | None
) -> dict[str, dict[str, Any]]:
    """Heroku's oci-image `process_types`: {type: {name, display_cmd, command, working_dir, default}}."""
    return {
        p["type"]: {
            "name": p["type"],
            "display_cmd": shlex.join([*p["command"], *p["args"]]),
            "command": f"{PROCESS_DIR}/{p['type']}",
            "working_dir": p["working-dir"] or APP_DIR,
            "default": p["type"] == default,
        }
        for p in processes
    }


async def export(
    exporter: Exporter,
    outputs: list[BuildpackOutput],
    previous: PreviousImage | None,
    base: BaseImage,
    client: RegistryClient,
    target: ImageRef,
    project_metadata: dict[str, Any],
) -> tuple[str, ImageConfig, dict[str, dict[str, Any]], str | None]:
    """Write and push the image; (manifest digest, config, process types, default type)."""
    prev_meta = previous.metadata if previous else {}
    records = exporter.launch_layers(outputs, previous)
    app_ids = exporter.app_layers(outputs, previous)
    launcher = exporter.data_layer(
        "buildpacksio/lifecycle:launcher",
        [(LAUNCHER_PATH.lstrip("/"), LAUNCHER_SOURCE.read_bytes(), 0o755)], [],
        (prev_meta.get("launcher") or {}).get("sha"),
    )  # fmt: skip
    meta_bytes, processes, default = metadata_toml(outputs)
    config_layer = exporter.data_layer(
        "buildpacksio/lifecycle:config",
        [(f"{LAYERS_DIR.lstrip('/')}/config/metadata.toml", meta_bytes, 0o644)], [],
        (prev_meta.get("config") or {}).get("sha"),
    )  # fmt: skip
    links = [(f"{PROCESS_DIR.lstrip('/')}/{p['type']}", LAUNCHER_PATH) for p in processes]
    types_layer = exporter.data_layer(
        "buildpacksio/lifecycle:process-types", [], links,
        (prev_meta.get("process-types") or {}).get("sha"),
    )  # fmt: skip
    lifecycle_md = {
        "app": [{"sha": d} for d in app_ids],
        "config": {"sha": config_layer.diff_id},
        "launcher": {"sha": launcher.diff_id},
        "process-types": {"sha": types_layer.diff_id},
        "buildpacks": [records[o.bp.id] for o in outputs],
        "runImage": {
            "image": base.name, "topLayer": base.layer.diff_id, "reference": base.reference,
        },
        "exec-env": "production",
    }  # fmt: skip
    build_md = {
        "processes": [
            {
                "type": p["type"], "command": p["command"], "args": p["args"], "direct": True,
                "working-dir": p["working-dir"] or APP_DIR, "buildpackID": p["buildpack-id"],
                "exec-env": p["exec-env"],
            }
            for p in processes
        ],
        "buildpacks": [
            {"id": o.bp.id, "version": o.bp.desc.version, "homepage": o.bp.desc.homepage,
             "api": o.bp.desc.api}
            for o in outputs
        ],
        "launcher": {"version": LAUNCHER_VERSION, "source": {"git": {"repository": "spruce"}}},
    }  # fmt: skip
    labels = dict(base.config.labels)
    for out in outputs:
        labels.update(out.labels)
    labels.update(
        {
            "io.buildpacks.lifecycle.metadata": json.dumps(lifecycle_md, sort_keys=True),
            "io.buildpacks.build.metadata": json.dumps(build_md, sort_keys=True),
            "io.buildpacks.project.metadata": json.dumps(project_metadata, sort_keys=True),
            "io.buildpacks.rebasable": "false",
        }
    )
    for name in ("lifecycle", "build", "project"):
        exporter.output(f"Adding label 'io.buildpacks.{name}.metadata'")
    base_env = base.config.env_map()
    env = dict(base_env)
    env.update(CNB_LAYERS_DIR=LAYERS_DIR, CNB_APP_DIR=APP_DIR)
    env["PATH"] = f"{PROCESS_DIR}:{base_env.get('PATH', '')}"
    if default:
        exporter.output(f"Setting default process type '{default}'")
    config = ImageConfig(
        architecture=base.config.architecture,
        os=base.config.os,
        env=[f"{k}={v}" for k, v in env.items()],
        entrypoint=[f"{PROCESS_DIR}/{default}" if default else LAUNCHER_PATH],
        working_dir=APP_DIR,
        user=f"{CNB_USER[0]}:{CNB_USER[1]}",
        labels=labels,
        diff_ids=[base.layer.diff_id, *(layer.diff_id for layer in exporter.layers)],
    )
    exporter.output(f"Saving {target}...")
    repo = target.repository
    await client.push_blob(repo, base.layer.digest, base.layer.path)
    for layer in exporter.layers:
        if layer.path is None:
            if not await client.has_blob(repo, layer.digest):
                raise ExportError(
                    f"failed to export: layer {layer.digest} is gone from the registry"
                )
            continue
        await client.push_blob(repo, layer.digest, layer.path)
    config_bytes = config.to_bytes()
    config_digest = await client.push_blob_bytes(repo, config_bytes, exporter.blobs)
    manifest = Manifest(
        Descriptor(MEDIA_CONFIG, config_digest, len(config_bytes)),
        (base.descriptor(), *(layer.descriptor() for layer in exporter.layers)),
    )
    digest = await client.put_manifest(repo, target.tag or "latest", manifest.to_bytes())
    exporter.output(f"*** Images ({digest}):")
    exporter.output(f"      {target}")
    return digest, config, process_types(processes, default), default
