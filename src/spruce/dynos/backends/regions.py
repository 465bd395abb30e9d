"""Regions mapped to Kubernetes clusters: `spruce up --kube-region REGION=SPEC`.

A region names either node labels of the cluster of --kubeconfig (`label:KEY=VALUE`: its
apps' dynos get that nodeSelector) or a cluster of its own (`kubeconfig:PATH`: its apps'
dynos run there, in the namespace of the kubeconfig's current context, else --namespace).
An app's region is its space's (or `us`/`eu` outside spaces), so a space's dynos run only
where its region says. `RegionBackends` sends each app's calls to its region's cluster.
Pure parsing and dispatch: no Kubernetes client here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spruce.dynos.backends.generations import Backend, Dispatcher
from spruce.services.model import AppRuntime

_REGION = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# A label key: an optional DNS-subdomain prefix and a name; a value: 63 of [A-Za-z0-9._-].
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")


class KubeRegionError(ValueError):
    """A --kube-region value that says nothing Spruce can use (the message says why)."""


@dataclass(frozen=True)
class KubeRegion:
    region: str
    kubeconfig: Path | None = None
    """The region's own cluster; None: the --kubeconfig cluster, on `labels`' nodes."""
    labels: tuple[tuple[str, str], ...] = ()


def parse_kube_region(value: str) -> KubeRegion:
    """`eu=label:topology.kubernetes.io/region=eu` or `eu=kubeconfig:/etc/spruce/eu.yaml`."""
    region, sep, spec = value.partition("=")
    region = region.strip()
    usage = "use REGION=label:KEY=VALUE or REGION=kubeconfig:PATH"
    if not sep or not _REGION.match(region):
        raise KubeRegionError(f"{value!r} names no region ({usage})")
    kind, sep, rest = spec.partition(":")
    if kind == "label" and sep:
        key, sep, val = rest.partition("=")
        if not sep or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(val):
            raise KubeRegionError(
                f"{rest!r} is not a node label KEY=VALUE (e.g. topology.kubernetes.io/region=eu)"
            )
        return KubeRegion(region, labels=((key, val),))
    if kind == "kubeconfig" and sep and rest.strip():
        path = Path(rest.strip()).expanduser()
        if not path.is_file():
            raise KubeRegionError(f"the kubeconfig {path} of region {region} does not exist")
        return KubeRegion(region, kubeconfig=path)
    raise KubeRegionError(f"{value!r}: {usage}")


def parse_kube_regions(values: Sequence[str]) -> dict[str, KubeRegion]:
    out: dict[str, KubeRegion] = {}
    for value in values:
        r = parse_kube_region(value)
        if r.region in out:
            raise KubeRegionError(f"region {r.region} is mapped twice")
        out[r.region] = r
    return out


def node_labels(
    app: AppRuntime, regions: dict[str, KubeRegion], region_label: str | None
) -> dict[str, str]:
    """The nodeSelector of an app's dynos on the --kubeconfig cluster: its region's labels,
    else --kube-region-label set to the region's name, else none."""
    found = regions.get(app.region)
    if found is not None:
        return dict(found.labels)
    return {region_label: app.region} if region_label and app.region else {}


class RegionBackends(Dispatcher):
    """One backend per cluster: each app on its region's, the rest on the default one."""

    def __init__(self, default: Backend, by_region: dict[str, Backend]) -> None:
        super().__init__(default, list(by_region.values()))
        self.by_region = dict(by_region)

    def _choose(self, app: AppRuntime) -> Backend:
        return self.by_region.get(app.region, self._default)

    @property
    def warnings(self) -> Sequence[str]:
        return [w for b in (self._default, *self._others) for w in b.warnings]

    async def start(self) -> None:
        for b in (self._default, *self._others):
            await b.start()

    async def shutdown(self) -> None:
        """Every cluster's workloads keep running (adopted at the next start)."""
        errors: list[BaseException] = []
        for b in (self._default, *self._others):
            try:
                await b.shutdown()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]
