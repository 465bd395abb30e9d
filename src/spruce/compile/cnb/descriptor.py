"""buildpack.toml (Buildpack API 0.10-0.12), order groups and project.toml (schema 0.2)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED_APIS = ("0.10", "0.11", "0.12")
_ID = re.compile(r"^[A-Za-z0-9./-]+$")
_RESERVED_IDS = {"app", "config", "generated", "sbom"}


class DescriptorError(ValueError):
    """A buildpack.toml or project.toml that does not follow its spec; user-facing."""


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise DescriptorError(f"{path.name} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise DescriptorError(f"{path.name} is not valid TOML: {exc}") from None


@dataclass(frozen=True)
class GroupEntry:
    id: str
    version: str | None = None
    optional: bool = False


Group = tuple[GroupEntry, ...]


def parse_order(data: Any, where: str) -> list[Group]:
    """`[[order]] [[order.group]] id version optional` into a list of groups."""
    if not isinstance(data, list):
        raise DescriptorError(f"{where}: order must be an array of tables")
    groups: list[Group] = []
    for item in data:
        entries = item.get("group") if isinstance(item, dict) else None
        if not isinstance(entries, list) or not entries:
            raise DescriptorError(f"{where}: each [[order]] needs a non-empty group")
        group = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise DescriptorError(f"{where}: each group entry needs an id")
            version = entry.get("version")
            group.append(
                GroupEntry(
                    entry["id"],
                    str(version) if version is not None else None,
                    bool(entry.get("optional", False)),
                )
            )
        groups.append(tuple(group))
    return groups


@dataclass(frozen=True)
class BuildpackDescriptor:
    api: str
    id: str
    version: str
    path: Path
    name: str = ""
    homepage: str = ""
    clear_env: bool = False
    order: tuple[Group, ...] = ()  # composite buildpacks only
    targets: tuple[dict[str, Any], ...] = ()

    @property
    def composite(self) -> bool:
        return bool(self.order)

    @classmethod
    def load(cls, directory: Path) -> BuildpackDescriptor:
        directory = Path(directory)
        data = _load(directory / "buildpack.toml")
        api = str(data.get("api", ""))
        bp = data.get("buildpack")
        if not isinstance(bp, dict):
            raise DescriptorError(f"{directory}/buildpack.toml has no [buildpack] table")
        bp_id, version = bp.get("id"), bp.get("version")
        where = f"buildpack {bp_id or directory.name}"
        if api not in SUPPORTED_APIS:
            raise DescriptorError(
                f"{where}: Buildpack API {api or '(none)'} is not supported; Spruce supports "
                f"{', '.join(SUPPORTED_APIS)}"
            )
        if not isinstance(bp_id, str) or not _ID.match(bp_id) or bp_id in _RESERVED_IDS:
            raise DescriptorError(f"{where}: invalid buildpack id {bp_id!r}")
        if not isinstance(version, str) or not version:
            raise DescriptorError(f"{where}: [buildpack] version is required")
        order = tuple(parse_order(data["order"], where)) if "order" in data else ()
        if not order:
            for exe in ("detect", "build"):
                if not (directory / "bin" / exe).is_file():
                    raise DescriptorError(f"{where}: bin/{exe} is missing")
        targets = data.get("targets") or []
        return cls(
            api=api,
            id=bp_id,
            version=version,
            path=directory,
            name=str(bp.get("name", "")),
            homepage=str(bp.get("homepage", "")),
            clear_env=bool(bp.get("clear-env", False)),
            order=order,
            targets=tuple(t for t in targets if isinstance(t, dict)),
        )

    def supports(self, os_name: str, arch: str) -> bool:
        """Targets check: no targets means linux/any arch for a bin/build buildpack."""
        if not self.targets:
            return os_name == "linux"
        return any(
            t.get("os", os_name) == os_name and t.get("arch", arch) == arch for t in self.targets
        )


@dataclass(frozen=True)
class ProjectBuildpack:
    id: str | None
    version: str | None
    uri: str | None


@dataclass
class ProjectDescriptor:
    group: list[ProjectBuildpack] = field(default_factory=list)
    pre: list[ProjectBuildpack] = field(default_factory=list)
    post: list[ProjectBuildpack] = field(default_factory=list)
    build_env: dict[str, str] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    builder: str | None = None
    project: dict[str, Any] = field(default_factory=dict)  # the `_` table

    @classmethod
    def load(cls, app_dir: Path) -> ProjectDescriptor | None:
        path = Path(app_dir) / "project.toml"
        if not path.is_file():
            return None
        return cls.parse(_load(path))

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ProjectDescriptor:
        top = data.get("_")
        if not isinstance(top, dict) or "schema-version" not in top:
            raise DescriptorError(
                'project.toml must start with [_] schema-version = "0.2" (project descriptor 0.2)'
            )
        if str(top["schema-version"]) != "0.2":
            raise DescriptorError(
                f'project.toml schema-version {top["schema-version"]!r} is not supported; use "0.2"'
            )
        io = data.get("io", {})
        cnb = io.get("buildpacks", {}) if isinstance(io, dict) else {}
        if not isinstance(cnb, dict):
            raise DescriptorError("project.toml [io.buildpacks] must be a table")
        include, exclude = cnb.get("include", []), cnb.get("exclude", [])
        if include and exclude:
            raise DescriptorError(
                "project.toml: io.buildpacks include and exclude cannot both be set"
            )
        env: dict[str, str] = {}
        build = cnb.get("build", {})
        for item in build.get("env", []) if isinstance(build, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise DescriptorError("project.toml: each [[io.buildpacks.build.env]] needs a name")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", item["name"]):
                raise DescriptorError(f"project.toml: invalid env name {item['name']!r}")
            env[item["name"]] = str(item.get("value", ""))
        pre = cnb.get("pre", {})
        post = cnb.get("post", {})
        return cls(
            group=_project_group(cnb.get("group", []), "io.buildpacks.group"),
            pre=_project_group(pre.get("group", []) if isinstance(pre, dict) else [], "pre"),
            post=_project_group(post.get("group", []) if isinstance(post, dict) else [], "post"),
            build_env=env,
            include=[str(p) for p in include],
            exclude=[str(p) for p in exclude],
            builder=str(cnb["builder"]) if "builder" in cnb else None,
            project=dict(top),
        )


def _project_group(items: Any, where: str) -> list[ProjectBuildpack]:
    if not isinstance(items, list):
        raise DescriptorError(f"project.toml: [[{where}]] must be an array of tables")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise DescriptorError(f"project.toml: each [[{where}]] entry must be a table")
        if "script" in item:
            raise DescriptorError(
                f"project.toml: inline buildpacks ([{where}.script]) are not supported"
            )
        bp_id, uri = item.get("id"), item.get("uri")
        if bp_id is None and uri is None:
            raise DescriptorError(f"project.toml: each [[{where}]] entry needs an id or a uri")
        version = item.get("version")
        out.append(
            ProjectBuildpack(
                str(bp_id) if bp_id is not None else None,
                str(version) if version is not None else None,
                str(uri) if uri is not None else None,
            )
        )
    return out
