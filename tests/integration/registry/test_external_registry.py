"""An operator's registry (`spruce up --registry URL`): its checks at start, and a Fir build
pushing into it under the URL's path prefix. A real docker-registry plays the operator's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from spruce.certs.ca import InternalCA
from spruce.compile.fir import CnbImageRunner
from spruce.compile.users import ensure_build_user
from spruce.config import Settings
from spruce.platform import make_registry
from spruce.registry import ExternalRegistry, RegistryConfig, RegistryServer, RegistryUnavailable
from spruce.services.model import ImageBuildRequest

pytestmark = pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
    reason="needs docker-registry and bubblewrap (Debian)",
)


def test_bad_registry_urls_are_refused_with_a_sentence(tmp_path: Path) -> None:
    for url, message in [
        ("ftp://r.example.com", r"an http\(s\) URL"),
        ("https://user:pw@r.example.com", "--registry-username"),
        ("http://r.example.com", "only allowed on loopback"),
    ]:
        with pytest.raises(ValueError, match=message):
            ExternalRegistry(RegistryConfig(url))
    with pytest.raises(ValueError, match="no such file"):
        ExternalRegistry(RegistryConfig("https://r.example.com", ca_file=tmp_path / "none.pem"))
    ext = ExternalRegistry(RegistryConfig("r.example.com:5000/team/spruce/"))
    assert (ext.address, ext.prefix, ext.url) == (
        "r.example.com:5000",
        "team/spruce",
        "https://r.example.com:5000",
    )
    # spruce up turns a bad --registry into a start failure (OSError: "could not start").
    with pytest.raises(OSError, match="only allowed on loopback"):
        make_registry(Settings(registry_url="http://10.1.2.3:5000"), tmp_path, InternalCA(tmp_path))


async def test_a_fir_build_pushes_into_the_operators_registry(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    ca = InternalCA(tmp_path / "operator-ca")
    operator = RegistryServer.from_internal_ca(tmp_path / "operator", ca)
    await operator.start()
    try:
        creds = operator.credentials
        assert creds is not None
        wrong = ExternalRegistry(
            RegistryConfig(operator.url, creds.username, "not-the-password", ca.cert_path)
        )
        with pytest.raises(RegistryUnavailable, match="not usable"):
            await wrong.start()
        registry = ExternalRegistry(
            RegistryConfig(
                f"{operator.url}/ops/spruce", creds.username, creds.password, ca.cert_path
            )
        )
        await registry.start()
        runner = CnbImageRunner(
            registry.address, registry.client, registry.prefix, run_as=ensure_build_user
        )
        src = tmp_path / "src"
        src.mkdir()
        (src / "Procfile").write_text("web: python3 -m http.server $PORT\n")
        lines: list[str] = []
        result = await runner.build_image(
            ImageBuildRequest(
                app_id="0b5e6c1e-8a4f-4c1b-9a57-000000000001",
                source_dir=src,
                work_dir=tmp_path / "work",
                cache_dir=tmp_path / "cache",
            ),
            lines.append,
        )
        repo = f"{operator.address}/ops/spruce/apps/0b5e6c1e-8a4f-4c1b-9a57-000000000001"
        assert result.image_repo == repo and result.image == f"{repo}@{result.digest}"
        assert "===> EXPORTING" in lines and creds.password not in "\n".join(lines)
        assert await runner.image_exists(result.image)
        assert not await runner.image_exists(f"{repo}@sha256:{'0' * 64}")
    finally:
        await operator.stop()
