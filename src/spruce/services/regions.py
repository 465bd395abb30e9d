"""Regions and generations: where apps run, and which generation (Cedar or Fir) they are.

The Common Runtime regions (`us`, `eu`) are where apps outside a space run, as on Heroku.
Spaces run in the operator's regions (`spruce up --region NAME`, `local` by default): those
are the `private_capable` ones. Ids are derived from names so they stay stable.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import REGIONS as COMMON_RUNTIME
from .errors import InvalidParams, NotFound

_NS = uuid.UUID("6b1f8c2e-1d0a-4f9b-8f54-3a2b0c9d7e61")
REGION_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
DEFAULT_SPACE_REGION = "local"


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    description: str
    country: str
    locale: str
    private_capable: bool
    provider: dict[str, str]


def region_root(home: Path, region: str) -> Path:
    """A region's data root on this machine: everything of its spaces' apps that is kept
    on disk (build caches, slugs, unpacked images and release copies, add-on data)."""
    return Path(home) / "regions" / region


def region_id(name: str) -> str:
    for r in COMMON_RUNTIME:
        if r["name"] == name:
            return str(r["id"])
    return str(uuid.uuid5(_NS, f"region:{name}"))


def _common(r: dict[str, Any]) -> Region:
    return Region(
        id=str(r["id"]),
        name=str(r["name"]),
        description=str(r["description"]),
        country=str(r["country"]),
        locale=str(r["locale"]),
        private_capable=False,
        provider=dict(r["provider"]),
    )


def operator_region(name: str, description: str | None = None) -> Region:
    """One region the operator declares (`spruce up --region NAME[=DESCRIPTION]`)."""
    if not REGION_NAME_RE.match(name) or name in {str(r["name"]) for r in COMMON_RUNTIME}:
        raise InvalidParams(
            f"Region name {name!r} must be lower case letters, digits and dashes, "
            "and not a Common Runtime region (us, eu)."
        )
    return Region(
        id=region_id(name),
        name=name,
        description=description or f"Spruce region {name}",
        country="",
        locale=name,
        private_capable=True,
        # The schema allows only AWS region names here; the operator's regions are this
        # machine's, so they read as the Common Runtime `us` does.
        provider={"name": "spruce", "region": "us-east-1"},
    )


def parse_region_option(value: str) -> Region:
    name, _, description = value.partition("=")
    return operator_region(name.strip(), description.strip() or None)


class Regions:
    """Every region the platform knows: the Common Runtime's and the operator's."""

    def __init__(self, operator: tuple[Region, ...] = ()) -> None:
        declared = operator or (operator_region(DEFAULT_SPACE_REGION, "Spruce local region"),)
        names = [r.name for r in declared]
        if len(set(names)) != len(names):
            raise InvalidParams("Each region may be declared once.")
        self.all: tuple[Region, ...] = (*(_common(r) for r in COMMON_RUNTIME), *declared)
        self.default_space_region = declared[0].name

    def get(self, identity: str) -> Region:
        for r in self.all:
            if identity in (r.id, r.name):
                return r
        raise NotFound("Couldn't find that region.")

    def for_space(self, identity: str | None) -> Region:
        """The region a new space goes to: one of the operator's."""
        name = identity or self.default_space_region
        for r in self.all:
            if name in (r.id, r.name) and r.private_capable:
                return r
        valid = ", ".join(r.name for r in self.all if r.private_capable)
        raise InvalidParams(f"Couldn't find that region ({name}). Valid space regions: {valid}.")


# -- generations ------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationInfo:
    id: str
    name: str
    unsupported_features: tuple[str, ...]


# What Spruce refuses for each generation (the CLI and Terraform read this list).
GENERATIONS: tuple[GenerationInfo, ...] = (
    GenerationInfo("b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c01", "cedar", ("run_inside",)),
    GenerationInfo(
        "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c02",
        "fir",
        (
            "classic_buildpacks",
            "stack",
            "shield",
            "ps_exec",
            "ps_copy",
            "ps_forward",
            "ps_socks",
            "autoscaling",
        ),
    ),
)


def find_generation(identity: str) -> GenerationInfo:
    for g in GENERATIONS:
        if identity in (g.id, g.name):
            return g
    raise NotFound("Couldn't find that generation.")
