"""One user's key cannot read or change another user's app; collaborators can."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from sqlalchemy import text
from support import RunningPlatform

from spruce.store.db import Store


def create_user(p: RunningPlatform, email: str) -> str:
    res = p.cli("users:create", email, "--home", str(p.home), check=True)
    key = res.stdout.strip().splitlines()[-1].split("API key: ")[1]
    assert key.startswith("HRKU-")
    return key


@pytest.fixture(scope="module")
def users(api_platform: RunningPlatform) -> dict[str, httpx.Client]:
    tag = uuid.uuid4().hex[:6]
    return {
        "alice": api_platform.client(create_user(api_platform, f"alice-{tag}@example.com")),
        "bob": api_platform.client(create_user(api_platform, f"bob-{tag}@example.com")),
        "bob_email": f"bob-{tag}@example.com",  # type: ignore[dict-item]
    }


def test_keys_are_stored_hashed(api_platform: RunningPlatform) -> None:
    url = (
        api_platform.env.get("SPRUCE_DATABASE_URL")
        or f"sqlite:///{api_platform.home / 'spruce.db'}"
    )
    store = Store(url)
    with store.engine.connect() as conn:
        stored = [row[0] for row in conn.execute(text("SELECT key_hash FROM api_keys"))]
    store.dispose()
    key = api_platform.api_key
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert all(key not in value for value in stored)


def test_other_users_app_is_forbidden(users: dict[str, httpx.Client]) -> None:
    alice, bob = users["alice"], users["bob"]
    name = "acl-" + uuid.uuid4().hex[:8]
    assert alice.post("/apps", json={"name": name}).status_code == 201
    alice.patch(f"/apps/{name}/config-vars", json={"SECRET": "s3cret"})
    for method, path, body in [
        ("GET", f"/apps/{name}", None),
        ("GET", f"/apps/{name}/config-vars", None),
        ("PATCH", f"/apps/{name}/config-vars", {"X": "1"}),
        ("GET", f"/apps/{name}/releases", None),
        ("PATCH", f"/apps/{name}", {"maintenance": True}),
        ("DELETE", f"/apps/{name}", None),
        ("GET", f"/apps/{name}/formation", None),
        ("PATCH", f"/apps/{name}/features/preboot", {"enabled": True}),
    ]:
        r = bob.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["id"] == "forbidden"
        assert "s3cret" not in r.text
    assert name not in [a["name"] for a in bob.get("/apps").json()]
    assert alice.get(f"/apps/{name}/config-vars").json() == {"SECRET": "s3cret"}
    assert alice.get(f"/apps/{name}").json()["maintenance"] is False


def test_collaborators(users: dict[str, httpx.Client]) -> None:
    alice, bob, bob_email = users["alice"], users["bob"], users["bob_email"]
    name = "col-" + uuid.uuid4().hex[:8]
    alice.post("/apps", json={"name": name})
    r = alice.post(f"/apps/{name}/collaborators", json={"user": bob_email})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["email"] == bob_email
    assert alice.post(f"/apps/{name}/collaborators", json={"user": bob_email}).status_code == 409
    assert (
        alice.post(f"/apps/{name}/collaborators", json={"user": "nobody@example.com"}).status_code
        == 404
    )
    listing = alice.get(f"/apps/{name}/collaborators").json()
    assert {c["user"]["email"]: c["role"] for c in listing}[bob_email] == "collaborator"
    # Bob can now work on the app but not destroy, rename it or add people.
    assert bob.patch(f"/apps/{name}/config-vars", json={"FROM_BOB": "1"}).status_code == 200
    assert name in [a["name"] for a in bob.get("/apps").json()]
    assert bob.delete(f"/apps/{name}").status_code == 403
    assert bob.patch(f"/apps/{name}", json={"name": name + "-x"}).status_code == 403
    assert alice.delete(f"/apps/{name}/collaborators/{bob_email}").status_code == 200
    assert bob.get(f"/apps/{name}").status_code == 403
    alice.delete(f"/apps/{name}")
