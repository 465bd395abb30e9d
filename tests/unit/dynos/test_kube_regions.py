"""--kube-region: a region names node labels of the main cluster or a cluster of its own;
RegionBackends sends each app's calls to its region's cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cli_invoke import spruce
from click.testing import CliRunner
from test_generation_backends import Recording, app

from spruce.dynos.backends.regions import (
    KubeRegion,
    KubeRegionError,
    RegionBackends,
    node_labels,
    parse_kube_region,
    parse_kube_regions,
)
from spruce.services.model import Generation


def test_a_region_names_a_node_label_or_a_kubeconfig(tmp_path: Path) -> None:
    assert parse_kube_region("eu=label:topology.kubernetes.io/region=eu-west") == KubeRegion(
        "eu", labels=(("topology.kubernetes.io/region", "eu-west"),)
    )
    cfg = tmp_path / "eu.yaml"
    cfg.write_text("{}")
    assert parse_kube_region(f"fir-eu=kubeconfig:{cfg}") == KubeRegion("fir-eu", kubeconfig=cfg)
    mapped = parse_kube_regions(["us=label:pool=a", f"north=kubeconfig:{cfg}"])
    assert set(mapped) == {"us", "north"}


@pytest.mark.parametrize(
    "value, says",
    [
        ("eu", "names no region"),
        ("EU=label:a=b", "names no region"),
        ("eu=label:no-value", "not a node label"),
        ("eu=label:bad key=x", "not a node label"),
        ("eu=label:k=" + "v" * 64, "not a node label"),
        ("eu=kubeconfig:/nonexistent/eu.yaml", "does not exist"),
        ("eu=cluster:x", "REGION=label:KEY=VALUE or REGION=kubeconfig:PATH"),
    ],
)
def test_bad_regions_are_refused_with_a_reason(value: str, says: str) -> None:
    with pytest.raises(KubeRegionError, match=says):
        parse_kube_region(value)


def test_a_region_mapped_twice_is_refused() -> None:
    with pytest.raises(KubeRegionError, match="twice"):
        parse_kube_regions(["eu=label:a=b", "eu=label:a=c"])


def test_node_labels_of_an_app() -> None:
    regions = parse_kube_regions(["eu=label:pool=europe"])
    eu = dataclasses.replace(app("a", Generation.FIR), region="eu")
    us = dataclasses.replace(eu, region="us")
    assert node_labels(eu, regions, "topology.kubernetes.io/region") == {"pool": "europe"}
    assert node_labels(us, regions, "topology.kubernetes.io/region") == {
        "topology.kubernetes.io/region": "us"
    }
    assert node_labels(us, regions, None) == {}


async def test_each_app_runs_on_its_region_s_cluster() -> None:
    main, north = Recording("main"), Recording("north", adopted=("adopted",))
    both = RegionBackends(main, {"north": north})
    await both.start()
    assert both.warnings == ["main warning", "north warning"]
    # Just after a restart: what a region's cluster holds is its backend's.
    assert both.web_endpoints("adopted")[0].dyno_id == "north"
    n = dataclasses.replace(app("n", Generation.FIR), region="north")
    u = dataclasses.replace(app("u", Generation.FIR), region="us")
    await both.converge(n)
    await both.converge(u)
    await both.run_one_off(n, "bash")
    await both.restart("n")
    assert both.web_endpoints("u")[0].dyno_id == "main"
    assert both.apps() == ["adopted", "n", "u"]
    assert [c for c, _ in north.calls] == [
        "start", "web_endpoints", "converge", "run_one_off", "restart"
    ]  # fmt: skip
    assert [c for c, _ in main.calls] == ["start", "converge", "web_endpoints"]
    await both.shutdown()
    assert main.calls[-1] == north.calls[-1] == ("shutdown", None)


def test_spruce_up_refuses_a_bad_kube_region_with_a_sentence(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        spruce, ["up", "--home", str(tmp_path), "--kube-region", "fir-eu=kubeconfig:/nope.yaml"]
    )
    assert result.exit_code == 1, result.output
    assert "--kube-region: the kubeconfig /nope.yaml of region fir-eu does not exist." in (
        result.output
    )
    assert "Traceback" not in result.output and not (tmp_path / "spruce.db").exists()
