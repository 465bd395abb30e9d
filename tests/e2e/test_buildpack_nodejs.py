"""heroku/nodejs as Heroku documents it, pushed with git to a running platform: the package
manager chosen by lock file (npm, Yarn classic and berry, pnpm through corepack), `engines`,
the heroku-prebuild / build / heroku-postbuild scripts, pruning devDependencies and the cache.

Each app depends on `ms` and has `is-number` as a devDependency its build script uses; the web
process shows what ended up in the slug."""

from __future__ import annotations

import json

import pytest
from buildpack_apps import app_files, push_new, repush
from e2e_support import Deployer
from support import RunningPlatform

NODE_WEB = """const http = require("http");
const fs = require("fs");
let dev = "pruned";
try { require.resolve("is-number"); dev = "present"; } catch (e) {}
const built = fs.existsSync("built.txt") ? fs.readFileSync("built.txt", "utf8").trim() : "none";
const body = `${process.env.LABEL} ms=${require("ms")(60000)} built=${built} dev=${dev}`;
http.createServer((req, res) => res.end(body)).listen(process.env.PORT);
"""
BUILD = (
    "node -e \"require('is-number'); require('fs').writeFileSync('built.txt', process.argv[1])\""
)


def node_app(name: str, label: str, **package: object) -> dict[str, str]:
    files = app_files(name)
    data = json.loads(files["package.json"])
    data.update(package)
    files["package.json"] = json.dumps(data, indent=2)
    files["index.js"] = NODE_WEB
    files["Procfile"] = f"web: LABEL={label} node index.js\n"
    return files


def test_npm_engines_postbuild_prune_and_cache(platform: RunningPlatform, deploy: Deployer) -> None:
    scripts = {"heroku-prebuild": "echo prebuild-ran", "build": BUILD + " from-build",
               "heroku-postbuild": BUILD + " from-postbuild", "heroku-cleanup": "echo cleanup-ran"}  # fmt: skip
    files = node_app("node-npm", "npm", scripts=scripts, engines={"node": "20.x"})
    app, repo, out, rc = push_new(platform, deploy, "npm", files)
    assert rc == 0, out[-3000:]
    assert "-----> Creating runtime environment" in out and "NODE_ENV=production" in out
    assert "engines.node (package.json):  20.x" in out
    assert "Resolving node version 20.x..." in out
    assert "Using node 20." in out and "Spruce does not download Node.js" in out
    assert "-----> Running heroku-prebuild" in out and "prebuild-ran" in out
    assert "Installing node modules (package-lock.json)" in out
    assert "Running heroku-postbuild" in out and "Running build" not in out
    assert "-----> Pruning devDependencies" in out
    assert "-----> Running heroku-cleanup" in out and "cleanup-ran" in out
    assert "Nothing cached yet" in out
    deploy.wait_serving(app, "npm ms=1m built=from-postbuild dev=pruned")
    # Second push: with npm told to stay offline, the install only works from the cache.
    config = {"NPM_CONFIG_OFFLINE": "true", "NPM_CONFIG_PRODUCTION": "false"}
    platform.client().patch(f"/apps/{app}/config-vars", json=config)
    out, rc = repush(deploy, repo, app, "cached")
    assert rc == 0, out[-3000:]
    assert "-----> Restoring cache" in out and "- npm cache" in out
    assert "Skipping because NPM_CONFIG_PRODUCTION is 'false'" in out
    deploy.wait_serving(app, "npm ms=1m built=from-postbuild dev=present")


@pytest.mark.parametrize(
    "engines,expected",
    [
        ({"node": "18.x"}, ["Could not find Node version corresponding to version requirement: 18.x",
                            "Installed: Node.js 20."]),
        ({"node": "not a range"}, ['Invalid semantic version "not a range" in engines.node']),
    ],
    ids=["unsatisfied", "invalid"],
)  # fmt: skip
def test_engines_node_the_platform_cannot_satisfy_fails(
    platform: RunningPlatform, deploy: Deployer, engines: dict[str, str], expected: list[str]
) -> None:
    files = {"package.json": json.dumps({"name": "e", "version": "1.0.0", "engines": engines})}
    _app, _repo, out, rc = push_new(platform, deploy, "eng", files)
    assert rc != 0 and "[remote rejected]" in out
    for text in expected:
        assert text in out, out[-3000:]


def test_two_lockfiles_fail(platform: RunningPlatform, deploy: Deployer) -> None:
    files = {"package.json": '{"name": "t", "version": "1.0.0"}', "package-lock.json": "{}",
             "yarn.lock": ""}  # fmt: skip
    _app, _repo, out, rc = push_new(platform, deploy, "two", files)
    assert rc != 0
    assert "Two different lockfiles found: package-lock.json and yarn.lock" in out


def test_yarn_classic(platform: RunningPlatform, deploy: Deployer) -> None:
    files = node_app("node-yarn1", "yarn1", scripts={"build": BUILD + " yarn1"})
    app, _repo, out, rc = push_new(platform, deploy, "yarn1", files)
    assert rc == 0, out[-3000:]
    assert "Using yarn 1.22.22" in out
    assert "Installing node modules (yarn.lock)" in out
    assert "Running build" in out
    deploy.wait_serving(app, "yarn1 ms=1m built=yarn1 dev=pruned")


def test_yarn_berry(platform: RunningPlatform, deploy: Deployer) -> None:
    files = node_app("node-berry", "berry", scripts={"build": BUILD + " berry"})
    version = json.loads(files["package.json"])["packageManager"].split("@")[1]
    app, _repo, out, rc = push_new(platform, deploy, "berry", files)
    assert rc == 0, out[-3000:]
    assert f"Using yarn {version}" in out
    assert "Installing node modules (yarn.lock)" in out
    deploy.wait_serving(app, "berry ms=1m built=berry dev=pruned")


def test_pnpm(platform: RunningPlatform, deploy: Deployer) -> None:
    files = node_app("node-pnpm", "pnpm", scripts={"build": BUILD + " pnpm"})
    version = json.loads(files["package.json"])["packageManager"].split("@")[1]
    app, _repo, out, rc = push_new(platform, deploy, "pnpm", files)
    assert rc == 0, out[-3000:]
    assert f"Using pnpm {version}" in out
    assert "Installing node modules (pnpm-lock.yaml)" in out
    deploy.wait_serving(app, "pnpm ms=1m built=pnpm dev=pruned")
