"""Pure CNB/OCI logic: build plan resolution, env modification rules, project.toml, layers,
references and auth challenges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spruce.compile.cnb.descriptor import DescriptorError, ProjectDescriptor
from spruce.compile.cnb.launcher import apply_env_dir, apply_layers_env
from spruce.compile.cnb.plan import Alternative, DetectResult, parse_plan, resolve
from spruce.compile.oci import ImageRef, LayerWriter, ReferenceError, diff_id_of, parse_challenge
from spruce.compile.procfile import ProcfileError, cnb_process_type


def _bp(bp_id: str, provides=(), requires=(), optional=False, passed=True, alts=None):  # type: ignore[no-untyped-def]
    alternatives = alts or (Alternative(tuple(provides), tuple({"name": r} for r in requires)),)
    return DetectResult(bp_id, optional, passed, alternatives)


def test_plan_requires_must_be_provided_earlier() -> None:
    assert resolve([_bp("a", requires=["node"]), _bp("b", provides=["node"])]) is None
    res = resolve([_bp("b", provides=["node"]), _bp("a", requires=["node"])])
    assert res is not None and res.group == ["b", "a"]
    assert res.plan_for("b") == [{"name": "node"}] and res.plan_for("a") == []


def test_optional_buildpack_that_breaks_the_plan_is_dropped() -> None:
    res = resolve(
        [_bp("a", provides=["x"], requires=["x"]), _bp("opt", provides=["y"], optional=True)]
    )
    assert res is not None and res.group == ["a"]
    assert resolve([_bp("a"), _bp("opt", optional=True, passed=False)]).group == ["a"]  # type: ignore[union-attr]
    assert resolve([_bp("a", passed=False), _bp("b")]) is None


def test_or_alternatives_are_tried_in_order() -> None:
    data = {"provides": [{"name": "x"}], "or": [{"requires": [{"name": "y", "version": "1"}]}]}
    alts = parse_plan(data, "t")
    assert alts[1].requires == ({"name": "y", "metadata": {"version": "1"}},)
    res = resolve([_bp("p", provides=["y"]), DetectResult("c", False, True, alts)])
    assert res is not None and res.group == ["p", "c"]


def test_unmet_entries_go_to_the_next_provider() -> None:
    res = resolve([_bp("a", provides=["x"]), _bp("b", provides=["x"]), _bp("c", requires=["x"])])
    assert res is not None and res.plan_for("a") == [{"name": "x"}]
    res.settle("a", {"x"})
    assert res.plan_for("b") == [{"name": "x"}]
    res.settle("b", set())
    assert res.plan_for("b") == []


def _files(root: Path, files: dict[str, str]) -> str:
    for name, value in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(value)
    return str(root)


def test_env_dir_suffixes(tmp_path: Path) -> None:
    d = _files(tmp_path / "env", {"A": "x", "B.default": "d", "C.default": "d", "P.prepend": "p",
                                  "P.delim": ":", "Q.append": "q", "R.override": "r"})  # fmt: skip
    env = {"C": "keep", "P": "old", "Q": "old"}
    apply_env_dir(env, d)
    assert env == {"A": "x", "B": "d", "C": "keep", "P": "p:old", "Q": "oldq", "R": "r"}


def test_layer_order_for_paths_and_overrides(tmp_path: Path) -> None:
    layers = []
    for bp, names in (("bp1", ["a", "b"]), ("bp2", ["c"])):
        dirs = []
        for name in names:
            layer = tmp_path / bp / name
            (layer / "bin").mkdir(parents=True)
            _files(layer, {"env/V.override": name, "env.launch/web/W": f"{name}-web"})
            dirs.append(str(layer))
        layers.append(dirs)
    env = {"PATH": "/usr/bin"}
    apply_layers_env(env, layers, "launch", "web")
    assert env["PATH"].split(os.pathsep) == [
        f"{tmp_path}/bp2/c/bin",
        f"{tmp_path}/bp1/a/bin",
        f"{tmp_path}/bp1/b/bin",
        "/usr/bin",
    ]
    assert env["V"] == "c" and env["W"] == "c-web"  # later buildpacks win


def test_project_descriptor() -> None:
    project = ProjectDescriptor.parse(
        {"_": {"schema-version": "0.2"}, "io": {"buildpacks": {
            "group": [{"id": "heroku/python"}, {"uri": "./bp"}],
            "build": {"env": [{"name": "X", "value": "1"}]}}}}
    )  # fmt: skip
    assert [g.id or g.uri for g in project.group] == ["heroku/python", "./bp"]
    assert project.build_env == {"X": "1"}
    with pytest.raises(DescriptorError, match="schema-version"):
        ProjectDescriptor.parse({"_": {"schema-version": "0.1"}})
    with pytest.raises(DescriptorError, match="include and exclude"):
        ProjectDescriptor.parse(
            {
                "_": {"schema-version": "0.2"},
                "io": {"buildpacks": {"include": ["a"], "exclude": ["b"]}},
            }
        )


def test_layers_are_reproducible(tmp_path: Path) -> None:
    blobs = []
    for i, mtime in enumerate((1_000_000, 2_000_000)):
        src = tmp_path / f"src{i}"
        _files(src, {"b/file": "data", "a": "x"})
        os.symlink("a", src / "link")
        for p in src.rglob("*"):
            os.utime(p, (mtime, mtime), follow_symlinks=False)
        writer = LayerWriter(tmp_path / f"out{i}")
        writer.add_tree(src, "layers/x")
        blobs.append(writer.finish())
    assert blobs[0].digest == blobs[1].digest and blobs[0].diff_id == blobs[1].diff_id
    assert diff_id_of(blobs[0].path) == blobs[0].diff_id


def test_references_and_challenges() -> None:
    ref = ImageRef.parse("127.0.0.1:5000/apps/web:v1@sha256:" + "a" * 64)
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "apps/web", "v1")
    assert ref.reference == "sha256:" + "a" * 64
    with pytest.raises(ReferenceError):
        ImageRef.parse("library/ubuntu")  # no registry host: no Docker Hub default here
    ch = parse_challenge('Bearer realm="https://r/token",service="reg",scope="repository:a:pull"')
    assert ch.scheme == "bearer" and ch.params["realm"] == "https://r/token"
    assert ch.params["scope"] == "repository:a:pull"


def test_cnb_process_type_rule() -> None:
    assert cnb_process_type("web") == ("web", [])
    name, warnings = cnb_process_type("My_Worker")
    assert name == "my-worker" and len(warnings) == 2
    with pytest.raises(ProcfileError):
        cnb_process_type("-bad")
