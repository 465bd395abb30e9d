"""Build plan resolution (Buildpack spec, Phase #1: Detection), without I/O.

Each buildpack's `bin/detect` gives an exit status and a plan: `provides`/`requires` at the
top level and alternatives in `[[or]]`. A group passes when some trial (one alternative per
buildpack, left to right) satisfies every non-optional buildpack: each provided name is required
by it or a later buildpack, each required name is provided by it or an earlier one. Optional
buildpacks that break a trial are dropped from it. The result is the final group and, for each
of its buildpacks, the plan entries it must provide in the build phase.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

Entry = dict[str, Any]  # {"name": ..., "metadata": {...}}


class PlanError(ValueError):
    """A detect plan file that is not what the spec describes."""


@dataclass(frozen=True)
class Alternative:
    provides: tuple[str, ...]
    requires: tuple[Entry, ...]


@dataclass(frozen=True)
class DetectResult:
    id: str
    optional: bool
    passed: bool
    alternatives: tuple[Alternative, ...] = (Alternative((), ()),)


@dataclass
class Resolution:
    group: list[str]  # ids that take part in the build, in order
    # name -> providers (ids in group order) and the requires entries for it
    entries: dict[str, tuple[list[str], list[Entry]]] = field(default_factory=dict)

    def plan_for(self, buildpack_id: str) -> list[Entry]:
        """Entries this buildpack is first in line to provide."""
        out: list[Entry] = []
        for providers, requires in self.entries.values():
            if providers and providers[0] == buildpack_id:
                out.extend(requires)
        return out

    def settle(self, buildpack_id: str, unmet: set[str]) -> None:
        """After a build: met entries are done; unmet ones pass to the next provider."""
        for name in list(self.entries):
            providers, _requires = self.entries[name]
            if providers and providers[0] == buildpack_id:
                if name in unmet:
                    providers.pop(0)
                else:
                    del self.entries[name]


def parse_plan(data: dict[str, Any], where: str) -> tuple[Alternative, ...]:
    """The alternatives a detect plan file offers: its top level, then each [[or]]."""

    def one(section: dict[str, Any]) -> Alternative:
        provides, requires = section.get("provides", []), section.get("requires", [])
        if not isinstance(provides, list) or not isinstance(requires, list):
            raise PlanError(f"{where}: provides and requires must be arrays of tables")
        names = []
        for item in provides:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise PlanError(f"{where}: each provides entry needs a name")
            names.append(item["name"])
        reqs: list[Entry] = []
        for item in requires:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise PlanError(f"{where}: each requires entry needs a name")
            entry: Entry = {"name": item["name"]}
            metadata = dict(item.get("metadata", {}))
            if "version" in item:  # deprecated requires.version lands in metadata
                metadata.setdefault("version", item["version"])
            if metadata:
                entry["metadata"] = metadata
            reqs.append(entry)
        return Alternative(tuple(names), tuple(reqs))

    alternatives = [one(data)]
    ors = data.get("or", [])
    if not isinstance(ors, list):
        raise PlanError(f"{where}: or must be an array of tables")
    alternatives += [one(section) for section in ors if isinstance(section, dict)]
    return tuple(alternatives)


def _check_trial(chosen: list[tuple[DetectResult, Alternative]]) -> list[int] | None:
    """Indexes that take part, or None when a non-optional buildpack cannot be satisfied."""
    included = list(range(len(chosen)))
    while True:
        broken = None
        for pos, i in enumerate(included):
            _result, alt = chosen[i]
            later_requires = {r["name"] for j in included[pos:] for r in chosen[j][1].requires}
            earlier_provides = {p for j in included[: pos + 1] for p in chosen[j][1].provides}
            if any(p not in later_requires for p in alt.provides) or any(
                r["name"] not in earlier_provides for r in alt.requires
            ):
                broken = i
                break
        if broken is None:
            return included
        if not chosen[broken][0].optional:
            return None
        included.remove(broken)


def resolve(results: list[DetectResult]) -> Resolution | None:
    """The group and plan for one order group's detect results, or None if it fails."""
    if any(not r.passed and not r.optional for r in results):
        return None
    passed = [r for r in results if r.passed]
    if not passed:
        return None
    for trial in itertools.product(*(r.alternatives for r in passed)):
        chosen = list(zip(passed, trial, strict=True))
        included = _check_trial(chosen)
        if included is None or not included:
            continue
        resolution = Resolution([chosen[i][0].id for i in included])
        for i in included:
            for req in chosen[i][1].requires:
                name = req["name"]
                if name not in resolution.entries:
                    providers = [chosen[j][0].id for j in included if name in chosen[j][1].provides]
                    resolution.entries[name] = (providers, [])
                resolution.entries[name][1].append(req)
        return resolution
    return None
