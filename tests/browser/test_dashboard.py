"""The dashboard in Debian's Chromium: sign-in, scale, restart, rollback, config vars, live
logs, graphs of measured data, CSRF refusal and the access rule, against a real platform
with an app pushed by git. Each test saves screenshots under .artifacts/browser/."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.e2e_support import Deployer
from playwright.sync_api import Browser, Locator, Page, expect
from support import RunningPlatform, wait_for

from spruce.netutil import free_port

WEB = """import http.server, os, sys

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("served " + self.path, flush=True)
        body = b"hello from the dashboard app"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def app(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> str:
    deploy = Deployer(platform, tmp_path_factory.mktemp("repos"))
    name = f"dash-{uuid.uuid4().hex[:6]}"
    platform.client().post("/apps", json={"name": name}).raise_for_status()
    repo = deploy.repo(name, files={"Procfile": "web: python3 web.py\n", "web.py": WEB})
    res = deploy.push(repo, name)
    assert res.returncode == 0, res.stderr
    deploy.wait_serving(name, "hello from the dashboard app")
    return name


def dashboard(platform: RunningPlatform) -> str:
    return platform.api_url + "/dashboard"


def sign_in(browser: Browser, platform: RunningPlatform, key: str | None = None) -> Page:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(dashboard(platform))
    expect(page).to_have_url(f"{dashboard(platform)}/login?next=/dashboard/")
    page.fill("#api_key", key or platform.api_key)
    submit(page, page.locator("button[type=submit]"))
    return page


def submit(page: Page, button: Locator) -> None:
    """Click a form's button and wait for the page it leads to (POST, then a redirect)."""
    with page.expect_navigation():
        button.click()


def router_get(platform: RunningPlatform, app: str, path: str) -> httpx.Response:
    return httpx.get(
        platform.endpoints["router_http_url"] + path,
        headers={"Host": f"{app}.localhost"},
        timeout=30,
    )


def api(platform: RunningPlatform, path: str) -> Any:
    r = platform.client().get(path)
    r.raise_for_status()
    return r.json()


def test_sign_in_shows_the_apps_and_a_bad_key_does_not(
    browser: Browser, platform: RunningPlatform, app: str, shots: Path
) -> None:
    page = sign_in(browser, platform, "HRKU-not-a-key")
    expect(page.locator(".flash.error")).to_have_text("That API key is not valid.")
    page.fill("#api_key", platform.api_key)
    submit(page, page.locator("button[type=submit]"))
    expect(page.locator(f'#apps tr[data-app="{app}"]')).to_contain_text("up")
    page.screenshot(path=str(shots / "apps.png"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "spruce_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != platform.api_key  # a key of the session's own
    # signing out ends that session: its key no longer opens the API either
    submit(page, page.locator("text=Sign out"))
    expect(page).to_have_url(f"{dashboard(platform)}/login")
    r = platform.client(cookie["value"]).get("/account")
    assert r.status_code == 401
    page.close()


def test_overview_scale_and_restart(
    browser: Browser, platform: RunningPlatform, app: str, shots: Path
) -> None:
    page = sign_in(browser, platform)
    started = time.monotonic()
    page.goto(f"{dashboard(platform)}/apps/{app}")
    elapsed = time.monotonic() - started
    timing = page.evaluate(
        "() => { const t = performance.getEntriesByType('navigation')[0];"
        " return t.responseEnd - t.requestStart; }"
    )
    (shots / "first-view.txt").write_text(
        f"{timing:.0f} ms server response, {elapsed:.2f} s load\n"
    )
    assert timing < 1000, f"the app's first view took {timing:.0f} ms (whole load {elapsed:.2f} s)"
    expect(page.locator('#dynos tr[data-dyno="web.1"]')).to_contain_text("up")
    row = page.locator('#formation tr[data-type="web"]')
    row.locator("input[name=quantity]").fill("2")
    submit(page, row.locator("button", has_text="Scale"))
    # Heroku's rule, from services: one Basic dyno per process type at most
    expect(page.locator("#error-message")).to_contain_text("more than 1 basic size dynos")
    page.go_back()
    row = page.locator('#formation tr[data-type="web"]')
    row.locator("input[name=quantity]").fill("2")
    row.locator("select[name=size]").select_option("standard-1x")
    submit(page, row.locator("button", has_text="Scale"))
    formation = api(platform, f"/apps/{app}/formation/web")
    assert (formation["quantity"], formation["size"].lower()) == (2, "standard-1x")

    def two_up() -> bool:
        page.reload()
        return page.locator('#dynos tr[data-dyno="web.2"] .state.up').count() == 1

    wait_for(two_up, 40, interval=0.5, what="web.2 up on the page")
    page.screenshot(path=str(shots / "overview-scaled.png"), full_page=True)

    before = {d["name"]: d["updated_at"] for d in api(platform, f"/apps/{app}/dynos")}
    time.sleep(1.1)  # updated_at has a resolution of a second
    submit(page, page.locator('#dynos tr[data-dyno="web.1"] button', has_text="Restart"))

    def restarted() -> bool:
        now = {d["name"]: d for d in api(platform, f"/apps/{app}/dynos")}
        return now["web.1"]["updated_at"] != before["web.1"] and now["web.1"]["state"] == "up"

    wait_for(restarted, 40, interval=0.3, what="web.1 restarted")
    # back to one dyno for the tests that follow
    row = page.locator('#formation tr[data-type="web"]')
    row.locator("input[name=quantity]").fill("1")
    row.locator("select[name=size]").select_option("basic")
    submit(page, row.locator("button", has_text="Scale"))
    assert api(platform, f"/apps/{app}/formation/web")["quantity"] == 1
    page.close()


def test_config_change_masked_reveal_and_rollback(
    browser: Browser, platform: RunningPlatform, app: str, shots: Path
) -> None:
    page = sign_in(browser, platform)
    page.goto(f"{dashboard(platform)}/apps/{app}/settings")
    before = max(r["version"] for r in api(platform, f"/apps/{app}/releases"))
    page.fill("#config-form input[name=key]", "GREETING")
    page.fill("#config-form input[name=value]", "s3cret-value-9f2")
    submit(page, page.locator("#config-form button"))
    assert api(platform, f"/apps/{app}/config-vars")["GREETING"] == "s3cret-value-9f2"
    row = page.locator('#config tr[data-key="GREETING"]')
    expect(row).to_be_visible()
    assert "s3cret-value-9f2" not in page.content()  # masked until revealed
    page.click("#reveal")
    expect(page.locator('#config tr[data-key="GREETING"] .value')).to_have_text("s3cret-value-9f2")
    page.screenshot(path=str(shots / "settings.png"), full_page=True)

    # roll back to the release before the change: the var is gone again
    page.goto(f"{dashboard(platform)}/apps/{app}")
    submit(page, page.locator(f'#releases tr[data-version="{before}"] button'))
    releases = api(platform, f"/apps/{app}/releases")
    current = max(releases, key=lambda r: r["version"])
    assert current["description"] == f"Rollback to v{before}"
    assert "GREETING" not in api(platform, f"/apps/{app}/config-vars")
    expect(page.locator(f'#releases tr[data-version="{current["version"]}"]')).to_contain_text(
        "current"
    )
    page.screenshot(path=str(shots / "rolled-back.png"), full_page=True)
    page.close()


def test_live_logs_show_the_line_the_app_prints(
    browser: Browser, platform: RunningPlatform, app: str, shots: Path
) -> None:
    page = sign_in(browser, platform)
    page.goto(f"{dashboard(platform)}/apps/{app}/logs?source=app&dyno=web.1")
    expect(page.locator("#log-state")).to_have_text("Streaming live.")
    marker = f"/browser-{uuid.uuid4().hex[:8]}"
    assert router_get(platform, app, marker).status_code == 200
    expect(page.locator("#log")).to_contain_text(f"app[web.1]: served {marker}", timeout=15000)
    # the filter holds: the router's own line for that request is not in this stream
    assert "heroku[router]" not in page.locator("#log").inner_text()
    page.screenshot(path=str(shots / "logs.png"))
    page.close()


def test_graphs_show_what_the_router_and_dynos_measured(
    browser: Browser, platform: RunningPlatform, app: str, shots: Path
) -> None:
    for i in range(12):
        assert router_get(platform, app, f"/graph-{i}").status_code == 200
    # maintenance mode: the router answers with H80, which the errors graph counts
    platform.client().patch(f"/apps/{app}", json={"maintenance": True}).raise_for_status()
    for _ in range(3):
        assert router_get(platform, app, "/").status_code == 503
    platform.client().patch(f"/apps/{app}", json={"maintenance": False}).raise_for_status()
    page = sign_in(browser, platform)

    def measured() -> bool:
        page.goto(f"{dashboard(platform)}/apps/{app}/metrics?window=15m")
        n = int(page.locator("#metrics-summary").get_attribute("data-requests") or 0)
        mem = int(page.locator("#graph-memory").get_attribute("data-measured") or 0)
        return n >= 15 and mem > 0

    wait_for(measured, 20, interval=0.5, what="requests and memory on the metrics page")
    for key in ("response-time", "throughput", "memory", "load"):
        graph = page.locator(f"#graph-{key}")
        assert int(graph.get_attribute("data-measured") or 0) > 0, key
        assert graph.locator("svg polyline, svg circle").count() > 0, key
    two = page.locator("#graph-throughput .legend li", has_text="2xx").inner_text()
    assert int(two.split(":")[1].split()[0]) >= 12, two
    h80 = page.locator("#graph-errors .legend li", has_text="H80").inner_text()
    assert h80.endswith("H80: 3 in all"), h80
    # the memory graph's latest value is the dyno's real resident memory (a Python server)
    legend = page.locator("#graph-memory .legend li", has_text="web.1").inner_text()
    mb = float(legend.split(":")[1].split()[0])
    assert 1 < mb < 512, legend
    page.screenshot(path=str(shots / "metrics.png"), full_page=True)
    page.close()


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (
            f'<form id="f" method="post" action="{self.target}">'
            '<input name="key" value="PWNED"><input name="value" value="1"></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def attacker_site(platform: RunningPlatform, app: str) -> Iterator[str]:
    _Attacker.target = f"{dashboard(platform)}/apps/{app}/config"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # another site: "localhost" is not the dashboard's 127.0.0.1
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_forms_from_another_site_or_without_the_token_are_refused(
    browser: Browser, platform: RunningPlatform, app: str, attacker_site: str, shots: Path
) -> None:
    page = sign_in(browser, platform)
    expect(page.locator("#apps")).to_be_visible()
    page.goto(attacker_site)
    expect(page.locator("#error-message")).to_be_visible()
    page.screenshot(path=str(shots / "csrf-refused.png"))
    # same origin, signed in, but a forged token
    page.goto(f"{dashboard(platform)}/apps/{app}/settings")
    status = page.evaluate(
        """async (url) => {
            const body = new URLSearchParams({csrf: "0".repeat(64), key: "PWNED", value: "2"});
            return (await fetch(url, {method: "POST", body})).status;
        }""",
        f"{dashboard(platform)}/apps/{app}/config",
    )
    assert status == 403
    assert "PWNED" not in api(platform, f"/apps/{app}/config-vars")
    page.close()


def test_another_user_sees_neither_the_app_nor_its_secrets(
    browser: Browser, platform: RunningPlatform, app: str
) -> None:
    platform.client().patch(f"/apps/{app}/config-vars", json={"OWNER_SECRET": "only-mine-77"})
    res = platform.cli(
        "users:create",
        f"eve-{uuid.uuid4().hex[:6]}@example.com",
        "--home",
        str(platform.home),
        check=True,
    )
    eve_key = res.stdout.strip().splitlines()[-1].split("API key: ")[1]
    page = sign_in(browser, platform, eve_key)
    expect(page.locator("h1")).to_have_text("Apps")
    assert app not in page.content()
    for path in ("", "/settings?reveal=1", "/logs", "/metrics", "/activity"):
        resp = page.goto(f"{dashboard(platform)}/apps/{app}{path}")
        assert resp is not None and resp.status in (403, 404), path
        assert "only-mine-77" not in page.content()
    page.close()


def test_destroy_needs_the_name_typed(
    browser: Browser, platform: RunningPlatform, shots: Path
) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    platform.client().post("/apps", json={"name": name}).raise_for_status()
    page = sign_in(browser, platform)
    page.goto(f"{dashboard(platform)}/apps/{name}/settings")
    page.fill("input[name=confirm]", "not-the-name")
    submit(page, page.locator("button.danger"))
    expect(page.locator("#error-message")).to_contain_text(f"Type the app's name ({name})")
    page.goto(f"{dashboard(platform)}/apps/{name}/settings")
    page.fill("input[name=confirm]", name)
    submit(page, page.locator("button.danger"))
    expect(page.locator("h1")).to_have_text("Apps")
    assert platform.client().get(f"/apps/{name}").status_code == 404
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(shots / "apps-phone.png"), full_page=True)
    page.close()
