"""heroku/static with the static.json settings Heroku's static buildpack documents, pushed with
git and read through the router."""

from __future__ import annotations

import json

from buildpack_apps import push_new
from e2e_support import Deployer
from support import RunningPlatform, wait_for

SITE = {
    "public/index.html": "<h1>home</h1>\n",
    "public/about.html": "<h1>about</h1>\n",
    "public/assets/app.js": "console.log(1)\n",
    "public/404.html": "<h1>custom not found</h1>\n",
    "public/app/shell.html": "<h1>spa shell</h1>\n",
}


def test_static_json_routes_redirects_headers_and_error_page(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    config = {
        "clean_urls": True,
        "routes": {"/app/**": "app/shell.html"},
        "redirects": {"/old": {"url": "/about", "status": 302}, "/gone": {"url": "/"}},
        "headers": {"/assets/**": {"Cache-Control": "public, max-age=31536000"}},
        "error_page": "404.html",
    }
    files = {**SITE, "static.json": json.dumps(config)}
    app, _repo, out, rc = push_new(platform, deploy, "site", files)
    assert rc == 0, out[-3000:]
    assert "-----> Static app detected" in out
    deploy.wait_serving(app, "home")
    assert deploy.get(app, "/about").text == "<h1>about</h1>\n"  # clean_urls
    assert deploy.get(app, "/app/users/7").text == "<h1>spa shell</h1>\n"  # routes
    old = deploy.get(app, "/old")
    assert old.status_code == 302 and old.headers["location"] == "/about"
    assert deploy.get(app, "/gone").status_code == 301
    asset = deploy.get(app, "/assets/app.js")
    assert asset.headers["cache-control"] == "public, max-age=31536000"
    assert "cache-control" not in deploy.get(app, "/about").headers
    missing = deploy.get(app, "/nope")
    assert missing.status_code == 404 and missing.text == "<h1>custom not found</h1>\n"


def test_static_json_https_only(platform: RunningPlatform, deploy: Deployer) -> None:
    files = {"index.html": "<p>secure</p>", "static.json": '{"https_only": true}'}
    app, _repo, out, rc = push_new(platform, deploy, "tls", files)
    assert rc == 0, out[-3000:]
    r = wait_for(
        lambda: (x := deploy.get(app, "/page?x=1")).status_code == 301 and x, 60, what="301"
    )
    assert r.headers["location"] == f"https://{app}.localhost/page?x=1"
