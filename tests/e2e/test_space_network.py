"""A space's trusted IP ranges, enforced by the router with real connections from two
source addresses (127.0.0.1 and 127.0.0.2 are both this machine's)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from e2e_support import WEB, Deployer
from support import RunningPlatform, wait_for


def get_from(platform: RunningPlatform, app: str, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as c:
        return c.get(
            platform.endpoints["router_http_url"] + "/", headers={"Host": f"{app}.localhost"}
        )


@pytest.fixture(scope="module")
def space_app(platform: RunningPlatform, deploy: Deployer) -> tuple[str, str]:
    api = platform.client()
    tag = uuid.uuid4().hex[:6]
    team, space, app = f"net-{tag}", f"net-{tag}", f"net-{tag}"
    assert api.post("/teams", json={"name": team}).status_code == 201
    assert api.post("/spaces", json={"name": space, "team": team}).status_code == 201
    wait_for(
        lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 20, what="allocated"
    )
    r = api.post("/teams/apps", json={"name": app, "space": space})
    assert r.status_code == 201, r.text
    repo = deploy.repo(
        app, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="inside")}
    )
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    deploy.wait_serving(app, "inside")
    return space, app


def test_trusted_ip_ranges_are_enforced_by_the_router(
    platform: RunningPlatform, deploy: Deployer, space_app: tuple[str, str]
) -> None:
    space, app = space_app
    api = platform.client()
    # The default ruleset trusts every source.
    assert get_from(platform, app, "127.0.0.2").status_code == 200
    assert get_from(platform, app, "127.0.0.1").status_code == 200

    def put(rules: list[dict[str, str]]) -> None:
        r = api.put(f"/spaces/{space}/inbound-ruleset", json={"rules": rules})
        assert r.status_code == 200, r.text

    # Only 127.0.0.2 is trusted: 127.0.0.1 gets 403 from the router, the app never sees it.
    put([{"action": "allow", "source": "127.0.0.2/32"}])
    refused = wait_for(
        lambda: (r := get_from(platform, app, "127.0.0.1")).status_code == 403 and r,
        10,
        what="403 for an untrusted source",
    )
    assert "inside" not in refused.text and "trusted IP ranges" in refused.text
    assert get_from(platform, app, "127.0.0.2").status_code == 200
    lines = wait_for(
        lambda: [ln for ln in deploy.logs(app, lines=200) if "code=H84" in ln] or None,
        10,
        what="router line for H84",
    )
    assert "heroku[router]" in lines[-1] and "status=403" in lines[-1]
    assert 'desc="Untrusted source address"' in lines[-1]

    # First match decides: a deny before a wide allow refuses just that source.
    put(
        [
            {"action": "deny", "source": "127.0.0.2/32"},
            {"action": "allow", "source": "127.0.0.0/8"},
        ]
    )
    wait_for(lambda: get_from(platform, app, "127.0.0.2").status_code == 403, 10, what="deny")
    assert get_from(platform, app, "127.0.0.1").status_code == 200

    # No rule at all: every web request is refused; apps outside spaces are untouched.
    put([])
    wait_for(lambda: get_from(platform, app, "127.0.0.1").status_code == 403, 10, what="none")
    put([{"action": "allow", "source": "0.0.0.0/0"}])
    wait_for(lambda: get_from(platform, app, "127.0.0.2").status_code == 200, 10, what="open")
