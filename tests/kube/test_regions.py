"""A region maps to node labels: an app's dynos run only on that region's nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.kube import Cluster

from .conftest import REGION, Dynos, make_slug, runtime, until

pytestmark = pytest.mark.slow


async def test_dynos_run_only_in_their_region(
    dynos: Dynos, kube_cluster: Cluster, tmp_path: Path
) -> None:
    b = dynos.backend
    region = {"app": "eu"}
    dynos.placement = lambda app: {REGION: region["app"]}
    node = {"eu": kube_cluster.nodes[0].name, "us": kube_cluster.nodes[1].name}
    app = runtime(make_slug(tmp_path), formation={"web": (2, "basic")})
    await b.converge(app)
    await until(lambda: len(b.web_endpoints(app.app_id)) == 2, what="two web dynos")

    def nodes() -> set[str | None]:
        return {p.node for p in b._pods.values() if p.app_id == app.app_id and not p.deleting}

    assert nodes() == {node["eu"]}  # both there, though anti-affinity would rather spread
    ports = {e.port for e in b.web_endpoints(app.app_id)}
    assert len(ports) == 2

    region["app"] = "us"  # the app's space moves: a rollout to the other region
    await b.converge(app)
    await until(lambda: nodes() == {node["us"]} and len(b.web_endpoints(app.app_id)) == 2, 120)
