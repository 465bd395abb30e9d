"""git push a Go, a Ruby, a Java and a PHP app whose dependencies are vendored: each builds
with the platform's toolchain (Debian's packages) without network, starts a web dyno on $PORT
and answers through the router with the text its vendored dependency supplies."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from e2e_support import Deployer
from lang_apps import GREETING, go_app, java_app, php_app, ruby_app
from support import RunningPlatform


def push_app(platform: RunningPlatform, deploy: Deployer, prefix: str, build) -> tuple[str, str]:
    app = f"{prefix}-{uuid.uuid4().hex[:6]}"
    assert platform.client().post("/apps", json={"name": app}).status_code == 201
    path = deploy.workdir / app
    build(path)
    deploy.git(path, "init", "-q", "-b", "main")
    deploy.commit(path, "first")
    res = deploy.push(path, app)
    assert res.returncode == 0, res.stderr[-4000:]
    return app, res.stderr


def test_go_module_with_vendor_builds_offline_and_serves(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app, out = push_app(platform, deploy, "go", go_app)
    assert "remote: -----> Go app detected" in out
    assert "go.mod's // +heroku goVersion asks for go1.19" in out
    assert "Using vendored modules (vendor/modules.txt): no downloads" in out
    # No Procfile: the web process is the binary named after the module.
    assert "Default types for buildpack -> web" in out
    deploy.wait_serving(app, GREETING.format(lang="Go"), timeout=60)
    formation = platform.client().get(f"/apps/{app}/formation/web").json()
    assert formation["command"] == "hello-spruce"


def test_go_version_the_platform_lacks_rejects_the_push(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app = f"gov-{uuid.uuid4().hex[:6]}"
    assert platform.client().post("/apps", json={"name": app}).status_code == 201
    repo = deploy.repo(
        app,
        files={
            "go.mod": "module example.com/x\n\ngo 1.99\n",
            "main.go": "package main\n\nfunc main() {}\n",
        },
    )
    res = deploy.push(repo, app)
    assert res.returncode != 0
    assert "remote:  !     This app needs Go 1.99 but the platform's Go is" in res.stderr
    assert "[remote rejected]" in res.stderr
    assert platform.client().get(f"/apps/{app}/releases").json()[-1]["version"] == 1


def test_ruby_bundler_with_vendor_cache_builds_offline_and_serves(
    platform: RunningPlatform, deploy: Deployer, tmp_path: Path
) -> None:
    app, out = push_app(platform, deploy, "rb", lambda p: ruby_app(p, tmp_path))
    assert "remote: -----> Ruby app detected" in out
    assert "Gems come from vendor/cache: no downloads" in out
    assert "Installing spruce_greeting 1.0.0" in out
    assert "BUNDLE_WITHOUT=development:test" in out
    deploy.wait_serving(app, GREETING.format(lang="Ruby"), timeout=60)
    config = platform.client().get(f"/apps/{app}/config-vars").json()
    assert config.get("RACK_ENV") == "production"  # bin/release's default, as on Heroku


def test_java_maven_with_local_repository_builds_offline_and_serves(
    platform: RunningPlatform, deploy: Deployer, tmp_path: Path
) -> None:
    app, out = push_app(platform, deploy, "jv", lambda p: java_app(p, tmp_path))
    assert "remote: -----> Java app detected" in out
    assert "Using OpenJDK 17." in out
    assert "building offline (-o)" in out
    assert "BUILD SUCCESS" in out
    deploy.wait_serving(app, GREETING.format(lang="Java"), timeout=90)


def test_php_composer_with_path_repository_builds_offline_and_serves(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app, out = push_app(platform, deploy, "php", php_app)
    assert "remote: -----> PHP app detected" in out
    assert "Installing spruce/greeting (1.0.0)" in out
    deploy.wait_serving(app, GREETING.format(lang="PHP"), timeout=60)
    r = deploy.get(app, "/index.php")
    assert r.status_code == 200 and r.text == GREETING.format(lang="PHP")


pytestmark = pytest.mark.slow
