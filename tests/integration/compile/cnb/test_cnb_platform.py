"""The CNB platform end to end with spec-conforming shell buildpacks (tests/.../fixtures):
every layer type, env files, exec.d, the build plan, cache reuse, layer reuse from the previous
image, a warm rebuild that uploads no layer, reproducible digests, skopeo and umoci on the
result, and processes launched from the unpacked image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cnb_support import FIXTURES, FirBuilder, needs_tools

from spruce.compile import BuildFailed
from spruce.compile.cnb.launch import prepare_launch
from spruce.compile.oci import ImageConfig, ImageRef, Manifest
from spruce.compile.oci.unpack import pull_image

pytestmark = [needs_tools, pytest.mark.slow]

LAYERS_BP = str(FIXTURES / "layers-bp")
CONSUMER_BP = str(FIXTURES / "consumer-bp")
PROJECT = (
    '[_]\nschema-version = "0.2"\n[[io.buildpacks.build.env]]\nname = "PROJECT_VAR"\nvalue = "p"\n'
)


def _app(fir: FirBuilder, name: str = "demo") -> Path:
    return fir.app(name, {"layers.txt": "x", "project.toml": PROJECT})


async def _image(fir: FirBuilder, repo: str, digest: str) -> tuple[Manifest, ImageConfig]:
    got = await fir.client.get_manifest(repo, digest)
    assert got is not None
    manifest = Manifest.from_bytes(got[0], got[1])
    return manifest, ImageConfig.from_bytes(await fir.client.get_blob(repo, manifest.config.digest))


async def test_every_layer_type_cache_and_reuse(fir: FirBuilder) -> None:
    app = _app(fir)
    bps = [LAYERS_BP, CONSUMER_BP]
    first = await fir.build(app, env={"CONFIG_VAR": "c"}, buildpacks=bps)
    out = fir.output
    for phase in ("ANALYZING", "DETECTING", "RESTORING", "BUILDING", "EXPORTING"):
        assert f"===> {phase}" in out
    assert "2 of 2 buildpacks participating" in out
    assert "platform env: CONFIG_VAR=c PROJECT_VAR=p" in out
    assert 'from = "layers"' in out and 'from = "consumer"' in out  # both requires, one provider
    assert "BUILD_VAR=visible-to-next" in out and "build-tool ran" in out
    assert "scratch was ignored" in out
    assert "cache counter: 1" in out and "deps: built" in out and "static: created" in out
    assert "Adding layer 'example/layers:deps'" in out
    assert "Adding 2/2 app layer(s)" in out  # the assets/* slice and the rest
    assert "Adding cache layer 'example/layers:counter'" in out
    assert first.process_types["web"] == {
        "name": "web", "display_cmd": "hello default-arg", "command": "/cnb/process/web",
        "working_dir": "/workspace", "default": True,
    }  # fmt: skip
    assert first.buildpacks[0] == {
        "id": "example/layers",
        "version": "1.2.3",
        "homepage": "https://example.test/layers",
    }
    manifest, config = await _image(fir, "apps/demo", first.digest)
    assert config.entrypoint == ["/cnb/process/web"]
    assert config.working_dir == "/workspace"
    env = config.env_map()
    assert env["CNB_LAYERS_DIR"] == "/layers" and env["CNB_APP_DIR"] == "/workspace"
    assert env["PATH"].startswith("/cnb/process:")
    assert config.labels["org.example.layers"] == "yes"
    lifecycle = json.loads(config.labels["io.buildpacks.lifecycle.metadata"])
    layers = lifecycle["buildpacks"][0]["layers"]
    assert sorted(layers) == ["deps", "runtime", "static"]  # launch layers only
    assert layers["deps"]["cache"] is True and layers["deps"]["data"] == {"version": "1"}
    assert lifecycle["runImage"]["topLayer"] == first.base_top_layer == config.diff_ids[0]
    build = json.loads(config.labels["io.buildpacks.build.metadata"])
    assert [p["type"] for p in build["processes"]] == ["web", "worker"]
    assert len(manifest.layers) == 1 + 3 + 2 + 3  # base, launch layers, app slices, launcher

    second = await fir.build(app, env={"CONFIG_VAR": "c"}, buildpacks=bps)
    out = fir.output
    assert "cache counter: 2" in out and "deps: reused from cache" in out
    assert "static: reusing the previous image's layer" in out
    assert "store builds: 2" in out
    for layer in ("deps", "runtime", "static"):
        assert f"Reusing layer 'example/layers:{layer}'" in out
    assert "Reusing 2/2 app layer(s)" in out
    manifest2, _config2 = await _image(fir, "apps/demo", second.digest)
    assert manifest2.layers == manifest.layers  # every layer kept its digest
    # Only the config changed (store.toml lives in a label): no layer was uploaded again.
    assert second.uploaded_blobs == [manifest2.config.digest]


async def test_same_source_gives_the_same_digest(fir: FirBuilder) -> None:
    one = await fir.build(_app(fir, "a"), repo="apps/one", cache="one", buildpacks=[LAYERS_BP])
    two = await fir.build(_app(fir, "b"), repo="apps/two", cache="two", buildpacks=[LAYERS_BP])
    assert one.digest == two.digest


async def test_skopeo_umoci_and_launch_from_the_unpacked_image(fir: FirBuilder) -> None:
    result = await fir.build(_app(fir), buildpacks=[LAYERS_BP, CONSUMER_BP])
    creds = fir.registry.credentials
    assert creds is not None and fir.registry.tls is not None
    certs = fir.root / "certs"
    certs.mkdir()
    shutil.copy(fir.registry.tls.ca_file, certs / "ca.crt")
    ref = f"docker://{result.image}"
    auth = [f"--creds={creds.username}:{creds.password}", f"--cert-dir={certs}"]
    info = json.loads(
        subprocess.run(
            ["skopeo", "inspect", *auth, ref], check=True, capture_output=True, text=True
        ).stdout
    )
    assert info["Digest"] == result.digest
    assert "io.buildpacks.lifecycle.metadata" in info["Labels"]
    layout = fir.root / "layout"
    subprocess.run(
        ["skopeo", "copy", f"--src-creds={creds.username}:{creds.password}",
         f"--src-cert-dir={certs}", ref, f"oci:{layout}:app"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:app", str(fir.root / "bundle")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    umoci_root = fir.root / "bundle" / "rootfs"
    assert (
        umoci_root / "layers/example_layers/static/index.html"
    ).read_text() == "static content\n"
    assert (umoci_root / "workspace/assets/site.css").exists()

    image = await pull_image(fir.client, ImageRef.parse(result.image), fir.root / "images")
    assert (image.rootfs / "cnb/process/web").is_symlink()
    assert (image.rootfs / "workspace/layers.txt").read_text() == "x"
    again = await pull_image(fir.client, ImageRef.parse(result.image), fir.root / "images")
    assert again.rootfs == image.rootfs

    def run(**kwargs: object) -> str:
        launch = prepare_launch(image, {"PORT": "5000", "PATH_LIST": "one"}, **kwargs)  # type: ignore[arg-type]
        proc = subprocess.run(
            launch.argv, env=launch.env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    # A process type: env files (default; prepend and append around the dyno's value, with
    # the layer's delim; per process), exec.d output, its default args.
    assert run(process_type="web") == (
        "hello: GREETING=hello EXECD_VAR=from-exec-d WEB_ONLY=web-only "
        "PATHS=zero,one,two args=default-arg"
    )
    assert run(process_type="web", command=["mine"]).endswith("args=mine")
    # A direct process gets no profile.d; not the web-only variable either.
    assert run(process_type="worker") == "worker EXECD_VAR=from-exec-d PROFILE_VAR=none"
    # `launcher <cmd>` (heroku run / run:inside): bash, with profile.d sourced.
    assert run(command=["echo $PROFILE_VAR $GREETING $PORT $WEB_ONLY."]) == (
        "from-profile hello 5000 ."
    )


async def test_detection_failure_reads_like_the_lifecycle(fir: FirBuilder) -> None:
    app = fir.app("nothing", {"README": "no layers.txt here"})
    with pytest.raises(BuildFailed):
        await fir.build(app, buildpacks=[LAYERS_BP])
    assert "ERROR: No buildpack groups passed detection." in fir.lines
    assert "ERROR: failed to detect: no buildpacks participating" in fir.lines
