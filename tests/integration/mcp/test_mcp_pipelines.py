"""Spruce's MCP pipelines tools (Heroku's names and schemas) over a real platform: create a
pipeline with its first app, list, info, and a promotion whose release phase output the
tool returns, checked against the Platform API."""

from __future__ import annotations

import io
import tarfile
import uuid
from typing import Any

import httpx
from support import RunningPlatform, wait_for

from .clients import create_user, failed, http_session, ok, text

APP_FILES = {
    "Procfile": "release: echo release-phase-of-$MARK\nweb: python3 -m http.server $PORT\n",
}


def _tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in files.items():
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _deploy(api: httpx.Client, app: str) -> None:
    blob = api.post("/sources").json()["source_blob"]
    assert httpx.put(blob["put_url"], content=_tarball(APP_FILES)).status_code == 200
    build = api.post(f"/apps/{app}/builds", json={"source_blob": {"url": blob["get_url"]}})
    assert build.status_code == 201, build.text

    def finished() -> Any:
        b = api.get(f"/apps/{app}/builds/{build.json()['id']}").json()
        return b if b["status"] != "pending" else None

    assert wait_for(finished, 180, interval=0.5, what="the build")["status"] == "succeeded"


async def test_pipelines_tools(platform: RunningPlatform) -> None:
    api = platform.client()
    base = f"mp{uuid.uuid4().hex[:6]}"
    dev, stg = f"{base}-dev", f"{base}-staging"
    for app in (dev, stg):
        assert api.post("/apps", json={"name": app}).status_code == 201
    api.patch(f"/apps/{stg}/config-vars", json={"MARK": "staging"}).raise_for_status()
    _deploy(api, dev)
    async with http_session(platform) as s:
        created = ok(
            await s.call_tool(
                "pipelines_create", {"name": base, "stage": "development", "app": dev}
            )
        )
        assert created["name"] == base and created["apps"] == [{"app": dev, "stage": "development"}]
        coupling = api.get(f"/apps/{dev}/pipeline-couplings").json()
        assert coupling["pipeline"]["id"] == created["id"] and coupling["stage"] == "development"
        api.post(
            "/pipeline-couplings", json={"app": stg, "pipeline": created["id"], "stage": "staging"}
        ).raise_for_status()

        listed = ok(await s.call_tool("pipelines_list", {"json": True}))
        assert base in [p["name"] for p in listed]
        assert base in text(await s.call_tool("pipelines_list", {}))
        info = ok(await s.call_tool("pipelines_info", {"pipeline": base, "json": True}))
        assert info["apps"] == [
            {"app": dev, "stage": "development"},
            {"app": stg, "stage": "staging"},
        ]
        assert info["owner"]["name"] == api.get("/account").json()["email"]

        promoted = ok(await s.call_tool("pipelines_promote", {"app": dev}))
        assert promoted["result"] == "Promotion successful" and promoted["to"] == "staging"
        (target,) = promoted["targets"]
        assert target["app"] == stg and target["status"] == "succeeded"
        assert "release-phase-of-staging" in target["release_output"]
        release = api.get(f"/apps/{stg}/releases/{target['release'][1:]}").json()
        assert release["status"] == "succeeded" and release["description"].startswith(
            f"Promote {dev}"
        )
        assert api.get(f"/apps/{stg}/builds").json() == []  # no build: the slug was copied

        msg = failed(await s.call_tool("pipelines_promote", {"app": stg}))
        assert "no downstream apps in production stage" in msg
        msg = failed(
            await s.call_tool("pipelines_create", {"name": "Bad Name", "stage": "staging"})
        )
        assert "Name must start with a letter" in msg
        msg = failed(await s.call_tool("pipelines_info", {"pipeline": f"{base}-nope"}))
        assert "Couldn't find that pipeline." in msg

    # another user sees neither the pipeline nor its apps
    bob = create_user(platform, f"bob-{base}@example.com")
    async with http_session(platform, bob) as s:
        assert ok(await s.call_tool("pipelines_list", {"json": True})) == []
        assert "Couldn't find that pipeline." in failed(
            await s.call_tool("pipelines_info", {"pipeline": base})
        )
        assert "You do not have access" in failed(
            await s.call_tool("pipelines_promote", {"app": dev})
        )
