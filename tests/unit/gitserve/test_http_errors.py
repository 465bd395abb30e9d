"""The endpoint's HTTP answers that do not need a git client (in-process ASGI calls)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spruce.gitserve import GitAccessError, GitServer, PushContext

KEY = "key-123"


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    async def authenticate(password: str) -> str | None:
        return "u" if password == KEY else None

    async def authorize(user: str, app: str) -> None:
        if app == "gone":
            raise GitAccessError("Couldn't find that app.", status=404)

    async def on_push(ctx: PushContext, output: object) -> bool:
        raise AssertionError("no push in these tests")

    server = GitServer(tmp_path / "repos", authenticate, authorize, on_push)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://git")


async def test_paths_methods_and_services(client: httpx.AsyncClient) -> None:
    auth = ("heroku", KEY)
    r = await client.get("/demo/info/refs", params={"service": "git-upload-pack"}, auth=auth)
    assert r.status_code == 404 and "/<app>.git" in r.text
    r = await client.get(
        "/Bad_Name.git/info/refs", params={"service": "git-upload-pack"}, auth=auth
    )
    assert r.status_code == 404
    r = await client.post("/demo.git/info/refs", auth=auth)
    assert r.status_code == 405
    r = await client.get("/demo.git/info/refs", auth=auth)  # dumb HTTP
    assert r.status_code == 403 and "smart HTTP" in r.text
    r = await client.get("/demo.git/git-receive-pack", auth=auth)
    assert r.status_code == 405
    r = await client.post("/demo.git/git-upload-pack", content=b"0000", auth=auth)
    assert r.status_code == 415


async def test_auth_and_access(client: httpx.AsyncClient, tmp_path: Path) -> None:
    params = {"service": "git-upload-pack"}
    r = await client.get("/demo.git/info/refs", params=params)
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="Spruce"'
    r = await client.get(
        "/demo.git/info/refs", params=params, headers={"Authorization": "Basic !!"}
    )
    assert r.status_code == 401
    r = await client.get(
        "/demo.git/info/refs", params=params, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 401
    r = await client.get("/gone.git/info/refs", params=params, auth=("", KEY))
    assert (r.status_code, r.text) == (404, "Couldn't find that app.\n")
    r = await client.get("/demo.git/info/refs", params=params, auth=("anyone", KEY))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert r.content.startswith(b"001e# service=git-upload-pack\n0000")
    assert (tmp_path / "repos" / "demo.git" / "hooks" / "pre-receive").stat().st_mode & 0o111
