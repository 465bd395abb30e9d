"""The supervised docker-registry: TLS from the internal CA, htpasswd auth, restarts, and
images that skopeo and umoci accept."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from spruce.compile.oci import (
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    Descriptor,
    ImageConfig,
    LayerWriter,
    Manifest,
    RegistryClient,
    RegistryError,
)
from spruce.registry import RegistryServer

pytestmark = pytest.mark.skipif(
    shutil.which("docker-registry") is None, reason="docker-registry (Debian) not installed"
)


async def _push_small_image(client: RegistryClient, tmp: Path, repo: str) -> str:
    layer = LayerWriter(tmp / "blobs")
    layer.add_data("hello.txt", b"hello from spruce\n")
    layer.add_symlink("hi.txt", "hello.txt")
    blob = layer.finish()
    config = ImageConfig(env=["PATH=/usr/bin:/bin"], diff_ids=[blob.diff_id])
    config_digest = await client.push_blob_bytes(repo, config.to_bytes(), tmp / "blobs")
    await client.push_blob(repo, blob.digest, blob.path)
    manifest = Manifest(
        Descriptor(MEDIA_CONFIG, config_digest, len(config.to_bytes())),
        (Descriptor(MEDIA_LAYER_GZIP, blob.digest, blob.size),),
    )
    return await client.put_manifest(repo, "v1", manifest.to_bytes())


def _skopeo_args(server: RegistryServer, tmp: Path, prefix: str = "") -> list[str]:
    """skopeo's credentials and a cert dir holding the CA as `*.crt` (how containers/image
    finds extra CAs)."""
    creds = server.credentials
    assert creds is not None and server.tls is not None
    certs = tmp / "skopeo-certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(server.tls.ca_file, certs / "spruce-ca.crt")
    return [f"--{prefix}creds={creds.username}:{creds.password}", f"--{prefix}cert-dir={certs}"]


async def test_push_then_skopeo_and_umoci_accept(registry: RegistryServer, tmp_path: Path) -> None:
    async with registry.client() as client:
        digest = await _push_small_image(client, tmp_path, "apps/hello")
        assert len(client.uploads) == 2
        # A second push of the same blobs sends nothing.
        client.uploads.clear()
        assert await _push_small_image(client, tmp_path, "apps/hello") == digest
        assert client.uploads == []

    if shutil.which("skopeo") is None or shutil.which("umoci") is None:
        pytest.skip("skopeo/umoci not installed")
    ref = f"docker://{registry.address}/apps/hello@{digest}"
    out = subprocess.run(
        ["skopeo", "inspect", *_skopeo_args(registry, tmp_path), ref],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    info = json.loads(out.stdout)
    assert info["Digest"] == digest
    assert info["Env"] == ["PATH=/usr/bin:/bin"]

    layout = tmp_path / "layout"
    subprocess.run(
        ["skopeo", "copy", *_skopeo_args(registry, tmp_path, "src-"), ref, f"oci:{layout}:v1"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (bundle / "rootfs" / "hello.txt").read_text() == "hello from spruce\n"
    assert os.readlink(bundle / "rootfs" / "hi.txt") == "hello.txt"


async def test_auth_is_required_and_tls_verified(registry: RegistryServer, tmp_path: Path) -> None:
    assert registry.tls is not None
    anonymous = RegistryClient(registry.address, ca_file=registry.tls.ca_file)
    async with anonymous:
        with pytest.raises(RegistryError, match="requires a username"):
            await anonymous.ping()
    creds = registry.credentials
    assert creds is not None
    untrusted = RegistryClient(registry.address, credentials=creds)  # system CAs only
    async with untrusted:
        with pytest.raises(RegistryError, match="cannot reach"):
            await untrusted.ping()
    from spruce.compile.oci import RegistryCredentials

    wrong = RegistryClient(
        registry.address, credentials=RegistryCredentials("spruce", "nope"),
        ca_file=registry.tls.ca_file,
    )  # fmt: skip
    async with wrong:
        with pytest.raises(RegistryError) as err:
            await wrong.ping()
        assert "nope" not in str(err.value)


async def test_registry_restarts_and_keeps_blobs(registry: RegistryServer, tmp_path: Path) -> None:
    async with registry.client() as client:
        digest = await _push_small_image(client, tmp_path, "apps/keep")
    pid = registry.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):
        if registry.restarts and registry.pid != pid:
            break
        await asyncio.sleep(0.05)
    assert registry.restarts == 1
    async with registry.client() as client:
        for _ in range(100):
            try:
                await client.ping()
                break
            except RegistryError:
                await asyncio.sleep(0.1)
        got = await client.get_manifest("apps/keep", digest)
        assert got is not None and got[2] == digest
