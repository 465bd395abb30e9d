"""The sources and builds API, app setups from app.json, and release output."""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import httpx
from e2e_support import WEB, Deployer
from support import RunningPlatform, wait_for


def tarball(files: dict[str, str], top: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(top + name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload(platform: RunningPlatform, data: bytes) -> str:
    blob = platform.client().post("/sources").json()["source_blob"]
    assert httpx.put(blob["put_url"], content=data).status_code == 200
    return str(blob["get_url"])


def test_build_from_uploaded_source(platform: RunningPlatform, deploy: Deployer) -> None:
    api = platform.client()
    app = f"ba-{uuid.uuid4().hex[:6]}"
    api.post("/apps", json={"name": app})
    url = upload(
        platform,
        tarball(
            {"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="from-api")},
            top="project/",
        ),
    )
    r = api.post(f"/apps/{app}/builds", json={"source_blob": {"url": url, "version": "v-api-1"}})
    assert r.status_code == 201 and r.json()["status"] == "pending"
    build = r.json()
    # The output stream follows the build while it runs and ends with it.
    out = httpx.get(build["output_stream_url"], timeout=120).text
    assert "Procfile app detected" in out
    done = wait_for(
        lambda: (
            (b := api.get(f"/apps/{app}/builds/{build['id']}").json())["status"] != "pending" and b
        ),
        60,
        what="build end",
    )
    assert done["status"] == "succeeded" and done["slug"] and done["release"]
    assert api.get(f"/apps/{app}/slugs/{done['slug']['id']}").json()["process_types"] == {
        "web": "python3 web.py"
    }
    assert api.get(f"/apps/{app}/releases").json()[-1]["description"] == "Deploy v-api-1"
    deploy.wait_serving(app, "from-api")
    assert [b["id"] for b in api.get(f"/apps/{app}/builds").json()] == [build["id"]]


def test_bad_sources_fail_cleanly(platform: RunningPlatform) -> None:
    api = platform.client()
    app = f"bb-{uuid.uuid4().hex[:6]}"
    api.post("/apps", json={"name": app})
    for data in (b"this is not a tarball", tarball({"../escape.txt": "x"})):
        url = upload(platform, data)
        build = api.post(f"/apps/{app}/builds", json={"source_blob": {"url": url}}).json()
        done = wait_for(
            lambda b=build: (
                (x := api.get(f"/apps/{app}/builds/{b['id']}").json())["status"] != "pending" and x
            ),
            30,
            what="build end",
        )
        assert done["status"] == "failed"
        assert (
            "tarball" in httpx.get(build["output_stream_url"]).text.lower()
            or "escap" in httpx.get(build["output_stream_url"]).text.lower()
        )
    assert [r["version"] for r in api.get(f"/apps/{app}/releases").json()] == [1]
    assert api.post(f"/apps/{app}/builds", json={"source_blob": {}}).status_code == 422


def test_app_setup_from_app_json(platform: RunningPlatform, deploy: Deployer) -> None:
    api = platform.client()
    manifest = {
        "name": "setup demo",
        "env": {
            "SECRET_TOKEN": {"generator": "secret"},
            "GREETING": {"value": "hi"},
            "NEEDED": {"required": True},
        },
        "formation": {"web": {"quantity": 1}, "worker": {"quantity": 1}},
        "scripts": {"postdeploy": "echo postdeploy-ran-$GREETING"},
    }
    files = {
        "app.json": json.dumps(manifest),
        "Procfile": "web: python3 web.py\nworker: sleep 1000\n",
        "web.py": WEB.format(text="setup"),
    }
    url = upload(platform, tarball(files))
    name = f"su-{uuid.uuid4().hex[:6]}"
    missing = api.post(
        "/app-setups", json={"app": {"name": name + "x"}, "source_blob": {"url": url}}
    ).json()
    failed = wait_for(
        lambda: (s := api.get(f"/app-setups/{missing['id']}").json())["status"] != "pending" and s,
        30,
        what="setup end",
    )
    assert failed["status"] == "failed" and any("NEEDED" in e for e in failed["manifest_errors"])
    r = api.post(
        "/app-setups",
        json={
            "app": {"name": name},
            "source_blob": {"url": url},
            "overrides": {"env": {"NEEDED": "yes"}},
        },
    )
    assert r.status_code == 201
    setup = wait_for(
        lambda: (s := api.get(f"/app-setups/{r.json()['id']}").json())["status"] != "pending" and s,
        90,
        what="setup end",
    )
    assert setup["status"] == "succeeded", setup
    assert (
        "postdeploy-ran-hi" in setup["postdeploy"]["output"]
        and setup["postdeploy"]["exit_code"] == 0
    )
    config = api.get(f"/apps/{name}/config-vars").json()
    assert (
        config["GREETING"] == "hi"
        and config["NEEDED"] == "yes"
        and len(config["SECRET_TOKEN"]) >= 32
    )
    assert {f["type"]: f["quantity"] for f in api.get(f"/apps/{name}/formation").json()} == {
        "web": 1,
        "worker": 1,
    }
    deploy.wait_serving(name, "setup")


def test_cli_manifest_and_release_output(platform: RunningPlatform, deploy: Deployer) -> None:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    repo = deploy.repo(
        name,
        files={
            "app.json": json.dumps({"env": {"A": {"value": "1"}}}),
            "Procfile": "release: echo release-out-$A\nweb: python3 web.py\n",
            "web.py": WEB.format(text="manifest"),
        },
    )
    res = platform.cli("apps:create", name, "--manifest", cwd=str(repo), check=True)
    assert f"Creating ⬢ {name} from app.json... done" in res.stdout
    deploy.wait_serving(name, "manifest")
    out = platform.cli("releases:output", "-a", name, check=True).stdout
    assert "release-out-1" in out
