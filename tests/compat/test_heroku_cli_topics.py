"""Whole topics of Heroku's CLI v11 against Spruce, beyond the first wave's commands:
labs, keys, authorizations, sessions, clients, auth, regions, releases (rollback with and
without a version, info, output), apps:stacks, apps:diff, features:info, domains:*,
drains:remove, addons:services/plans/rename/attach/detach/wait/open, ps:type, ps:wait,
git:clone, certs, buildpacks, config:edit, apps:open and apps:transfer.

Each is checked by its output and by its effect on the platform. One platform and one app
for the module, so the tier stays fast.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from compat_support import HerokuCLI
from support import RunningPlatform, wait_for


def _public_key(comment: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    )
    return f"{raw.decode()} {comment}\n"


@pytest.fixture(scope="module")
def app(heroku: HerokuCLI, platform: RunningPlatform) -> str:
    """An app with a slug (web and worker) released twice, through the API."""
    name = f"ht-{uuid.uuid4().hex[:6]}"
    heroku("apps:create", name)
    api = platform.client()
    slug = api.post(
        f"/apps/{name}/slugs",
        json={"process_types": {"web": "sleep 1000", "worker": "sleep 1000"}},
    ).json()
    assert api.post(f"/apps/{name}/releases", json={"slug": slug["id"]}).status_code == 201
    return name


def test_labs_account_and_app_features(
    heroku: HerokuCLI, app: str, platform: RunningPlatform
) -> None:
    out = heroku("labs", "-a", app).stdout
    assert "=== User Features admin@spruce.local" in out
    assert "[ ] dyno-metadata-on-new-apps" in out
    assert f"=== App Features {app}" in out and "[ ] runtime-dyno-metadata" in out
    assert "preboot" not in out  # general features are `features`' business
    res = heroku("labs:enable", "dyno-metadata-on-new-apps")
    assert "Enabling dyno-metadata-on-new-apps for admin@spruce.local... done" in res.stderr
    info = json.loads(heroku("labs:info", "dyno-metadata-on-new-apps", "--json").stdout)
    assert info["enabled"] is True and info["state"] == "beta"
    # the effect: a new app starts with runtime-dyno-metadata on
    second = f"hu-{uuid.uuid4().hex[:6]}"
    heroku("apps:create", second)
    assert "[+] runtime-dyno-metadata" in heroku("labs", "-a", second).stdout
    heroku("labs:disable", "dyno-metadata-on-new-apps")
    assert "[ ] dyno-metadata-on-new-apps" in heroku("labs").stdout
    # app features through labs:enable -a (the account has no such feature)
    heroku("labs:enable", "log-runtime-metrics", "-a", app)
    feats = platform.client().get(f"/apps/{app}/features/log-runtime-metrics").json()
    assert feats["enabled"] is True
    heroku("labs:disable", "log-runtime-metrics", "-a", app, "--confirm", app)
    info = json.loads(heroku("features:info", "preboot", "-a", app, "--json").stdout)
    assert info["name"] == "preboot" and info["enabled"] is False
    bad = heroku("labs:enable", "no-such-feature", check=False)
    assert bad.returncode != 0 and "Couldn't find that feature" in bad.stderr
    heroku("apps:destroy", second, "--confirm", second)


def test_keys(heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path) -> None:
    assert "You have no SSH keys." in heroku("keys").stderr
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(_public_key("dev@laptop"))
    res = heroku("keys:add", str(pub))
    assert "Uploading" in res.stderr and "done" in res.stderr
    out = heroku("keys").stdout
    assert "=== admin@spruce.local keys" in out and "ssh-ed25519" in out and "dev@laptop" in out
    keys = json.loads(heroku("keys", "--json").stdout)
    assert [k["comment"] for k in keys] == ["dev@laptop"]
    assert keys[0]["fingerprint"].startswith("SHA256:")
    assert pub.read_text().strip() in heroku("keys", "--long").stdout.splitlines()
    again = heroku("keys:add", str(pub), check=False)
    assert again.returncode != 0 and "already in use" in again.stderr
    heroku("keys:remove", "dev@laptop")
    assert json.loads(heroku("keys", "--json").stdout) == []
    pub.write_text(_public_key("other@laptop"))
    heroku("keys:add", str(pub))
    heroku("keys:clear")
    assert platform.client().get("/account/keys").json() == []


def test_authorizations_and_auth_token(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    res = heroku("authorizations:create", "--description", "for CI", "--json")
    made = json.loads(res.stdout)
    token = made["access_token"]["token"]
    assert made["description"] == "for CI" and made["scope"] == ["global"]
    # the new token is a working API key
    other = platform.client(token)
    assert other.get("/account").json()["email"] == "admin@spruce.local"
    listing = heroku("authorizations").stdout
    assert "for CI" in listing and made["id"] in listing
    info = heroku("authorizations:info", made["id"]).stdout
    assert re.search(r"Description:\s+for CI", info) and re.search(r"Scope:\s+global", info)
    heroku("authorizations:update", made["id"], "--description", "deploys")
    assert "deploys" in heroku("authorizations:info", made["id"]).stdout
    rotated = heroku("authorizations:rotate", made["id"]).stdout
    new_token = re.search(r"Token:\s+(\S+)", rotated)
    assert new_token and new_token.group(1) != token
    assert other.get("/account").status_code == 401  # the old token stopped working
    assert platform.client(new_token.group(1)).get("/account").status_code == 200
    res = heroku("authorizations:revoke", made["id"])
    assert "done, revoked authorization from deploys" in res.stderr
    assert platform.client(new_token.group(1)).get("/account").status_code == 401
    short = heroku("authorizations:create", "--short").stdout.strip()
    assert platform.client(short).get("/account").status_code == 200
    expiring = heroku("authorizations:create", "--expires-in", "60", check=False)
    assert expiring.returncode != 0 and "do not expire" in expiring.stderr
    # auth:token prints the CLI's own key; whoami the account
    assert heroku("auth:token").stdout.strip() == heroku.env["HEROKU_API_KEY"]
    assert heroku("auth:whoami").stdout.strip() == "admin@spruce.local"
    assert "Two-factor authentication is not enabled" in heroku("auth:2fa").stdout
    # logout asks for the current session and authorization (`~`) and keeps the API key
    # it was given (the account's default token), as on Heroku
    heroku("auth:logout")
    assert platform.client().get("/account").status_code == 200


def test_sessions_and_clients(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    assert "No OAuth sessions." in heroku("sessions").stdout
    # a dashboard sign-in is a session; sessions:destroy signs it out
    dash = platform.endpoints["api_url"] + "/dashboard"
    with httpx.Client(follow_redirects=False) as browser:
        signed_in = browser.post(dash + "/login", data={"api_key": heroku.env["HEROKU_API_KEY"]})
        assert signed_in.status_code in (302, 303), signed_in.text[:300]
        assert browser.get(dash + "/").status_code == 200
        sessions = json.loads(heroku("sessions", "--json").stdout)
        assert len(sessions) == 1 and sessions[0]["description"] == "dashboard session"
        heroku("sessions:destroy", sessions[0]["id"])
        assert browser.get(dash + "/").status_code in (302, 303, 307)
    assert "No OAuth clients." in heroku("clients").stdout
    out = heroku("clients:create", "my app", "https://example.com/auth/callback").stdout
    client_id = re.search(r"HEROKU_OAUTH_ID=(\S+)", out)
    secret = re.search(r"HEROKU_OAUTH_SECRET=(\S+)", out)
    assert client_id and secret
    assert secret.group(1) in heroku("clients:info", client_id.group(1)).stdout
    heroku("clients:update", client_id.group(1), "-n", "renamed")
    assert "renamed" in heroku("clients").stdout
    rotated = heroku("clients:rotate", client_id.group(1), "--shell").stdout
    assert secret.group(1) not in rotated and "HEROKU_OAUTH_SECRET=" in rotated
    heroku("clients:destroy", client_id.group(1))
    assert platform.client().get("/oauth/clients").json() == []


def test_regions(heroku: HerokuCLI) -> None:
    regions = json.loads(heroku("regions", "--json").stdout)
    assert {"us", "eu"} <= {r["name"] for r in regions}
    assert "us" in heroku("regions", "--common").stdout
    assert "local" in heroku("regions", "--private").stdout  # the operator's own region


def test_releases_rollback_info_output(
    heroku: HerokuCLI, app: str, platform: RunningPlatform
) -> None:
    heroku("config:set", "COLOR=blue", "-a", app)  # v3
    heroku("config:set", "COLOR=green", "-a", app)  # v4
    # no version: the release before the current eligible one (v3)
    res = heroku("releases:rollback", "-a", app)
    assert "Rolling back" in res.stderr and "to v3... done, v5" in res.stderr
    assert heroku("config:get", "COLOR", "-a", app).stdout.strip() == "blue"
    res = heroku("releases:rollback", "v2", "-a", app)
    assert "done, v6" in res.stderr
    assert heroku("config:get", "COLOR", "-a", app).stdout.strip() == ""
    info = heroku("releases:info", "v5", "-a", app).stdout
    assert "=== Release v5" in info and "Rollback to v3" in info and "COLOR" in info
    rel = json.loads(heroku("releases:info", "-a", app, "--json").stdout)
    assert rel["version"] == 6 and rel["eligible_for_rollback"] is True
    out = heroku("releases:output", "-a", app)
    assert "Release v6 has no release output available." in out.stderr


def test_apps_stacks_diff_and_info(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    out = heroku("apps:stacks", "-a", app).stdout
    assert "* heroku-24" in out and "heroku-22" in out
    res = heroku("apps:stacks:set", "heroku-22", "-a", app)
    assert "heroku-22" in res.stdout + res.stderr
    assert platform.client().get(f"/apps/{app}").json()["build_stack"]["name"] == "heroku-22"
    heroku("apps:stacks:set", "heroku-24", "-a", app)
    other = f"hv-{uuid.uuid4().hex[:6]}"
    heroku("apps:create", other)
    heroku("config:set", "ONLY_HERE=1", "-a", other)
    diff = heroku("apps:diff", app, other, check=False)
    assert "ONLY_HERE" in diff.stdout, diff.stdout + diff.stderr
    heroku("apps:destroy", other, "--confirm", other)
    extended = json.loads(heroku("apps:info", "-a", app, "--extended", "--json").stdout)
    assert extended["app"]["name"] == app


def test_domains_topic(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    host = f"www.{app}.example.com"
    heroku("domains:add", host, "-a", app)
    info = heroku("domains:info", host, "-a", app).stdout
    assert host in info
    heroku("domains:wait", host, "-a", app)
    other = f"api.{app}.example.com"
    heroku("domains:add", other, "-a", app)
    heroku("domains:remove", other, "-a", app)
    hosts = [d["hostname"] for d in platform.client().get(f"/apps/{app}/domains").json()]
    assert host in hosts and other not in hosts
    heroku("domains:clear", "-a", app)
    hosts = [d["hostname"] for d in platform.client().get(f"/apps/{app}/domains").json()]
    assert hosts == [f"{app}.localhost"]


def test_drains_and_addons_topics(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    url = "syslog+tls://logs.example.com:6514"
    heroku("drains:add", url, "-a", app)
    heroku("drains:remove", url, "-a", app)
    assert platform.client().get(f"/apps/{app}/log-drains").json() == []
    services = heroku("addons:services").stdout
    assert "heroku-postgresql" in services and "heroku-redis" in services
    assert "mini" in heroku("addons:plans", "heroku-redis").stdout
    heroku("addons:create", "heroku-redis:mini", "-a", app, "--name", f"{app}-cache")
    heroku("addons:wait", f"{app}-cache", "-a", app)
    heroku("addons:rename", f"{app}-cache", f"{app}-kv")
    res = heroku("addons:upgrade", f"{app}-kv", "heroku-redis:premium-0", "-a", app)
    assert "to premium-0" in res.stderr or "premium-0" in res.stderr, res.stderr
    plan = platform.client().get(f"/apps/{app}/addons/{app}-kv").json()["plan"]["name"]
    assert plan == "heroku-redis:premium-0"
    other = f"hw-{uuid.uuid4().hex[:6]}"
    heroku("apps:create", other)
    res = heroku("addons:attach", f"{app}-kv", "-a", other, "--as", "CACHE")
    assert "Attaching" in res.stderr and "CACHE" in res.stderr
    assert "CACHE_URL" in platform.client().get(f"/apps/{other}/config-vars").json()
    heroku("addons:detach", "CACHE", "-a", other)
    assert "CACHE_URL" not in platform.client().get(f"/apps/{other}/config-vars").json()
    heroku("apps:destroy", other, "--confirm", other)
    heroku("addons:destroy", f"{app}-kv", "-a", app, "--confirm", app)


def test_ps_type_and_wait(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    heroku("ps:type", "worker=standard-2x", "-a", app)
    formation = {f["type"]: f for f in platform.client().get(f"/apps/{app}/formation").json()}
    assert formation["worker"]["size"].lower() == "standard-2x"
    heroku("ps:scale", "worker=1", "web=0", "-a", app)
    heroku("ps:wait", "-a", app, "--type", "worker", timeout=120)
    dynos = platform.client().get(f"/apps/{app}/dynos").json()
    assert [d["state"] for d in dynos if d["type"] == "worker"] == ["up"]
    heroku("ps:scale", "worker=0", "-a", app)


def test_git_clone(heroku: HerokuCLI, app: str, tmp_path: Path) -> None:
    res = heroku("git:clone", "-a", app, str(tmp_path / "clone"), check=False, timeout=120)
    # an app never pushed to is an empty repository, as on Heroku
    assert (tmp_path / "clone" / ".git").exists(), res.stdout + res.stderr
    remotes = heroku.git("remote", "-v", cwd=tmp_path / "clone").stdout
    assert f"/{app}.git" in remotes


def test_maintenance_topic(heroku: HerokuCLI, app: str) -> None:
    heroku("maintenance:on", "-a", app)
    assert heroku("maintenance", "-a", app).stdout.strip() == "on"
    heroku("maintenance:off", "-a", app)
    assert heroku("maintenance", "-a", app).stdout.strip() == "off"


def test_apps_transfer_to_a_user(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    name = f"hx-{uuid.uuid4().hex[:6]}"
    heroku("apps:create", name)
    email = f"heir-{uuid.uuid4().hex[:6]}@example.com"
    made = platform.cli("users:create", email, "--home", str(platform.home), check=True)
    key = re.search(r"API key: (\S+)", made.stdout)
    assert key
    res = heroku("apps:transfer", email, "-a", name, "--confirm", name)
    assert f"Initiating transfer of {name} to {email}... email sent" in res.stderr
    recipient = platform.client(key.group(1))
    pending = recipient.get("/account/app-transfers").json()
    assert [(t["app"]["name"], t["state"]) for t in pending] == [(name, "pending")]
    accepted = recipient.patch(
        f"/account/app-transfers/{pending[0]['id']}", json={"state": "accepted"}
    )
    assert accepted.status_code == 200, accepted.text
    info = json.loads(heroku("apps:info", "-a", name, "--json").stdout)
    assert info["app"]["owner"]["email"] == email
    assert "admin@spruce.local" in heroku("access", "-a", name).stdout


def _self_signed(tmp_path: Path, hostname: str, tag: str) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp_path / f"{tag}.crt", tmp_path / f"{tag}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


def test_certs_topic(
    heroku: HerokuCLI, app: str, platform: RunningPlatform, tmp_path: Path
) -> None:
    host = f"secure.{app}.example.com"
    crt, key = _self_signed(tmp_path, host, "first")
    res = heroku("certs:add", str(crt), str(key), "-a", app)
    assert f"Adding SSL certificate to {app}... done" in res.stderr
    endpoints = platform.client().get(f"/apps/{app}/sni-endpoints").json()
    assert len(endpoints) == 1 and host in endpoints[0]["ssl_cert"]["cert_domains"]
    name = endpoints[0]["name"]
    assert name in heroku("certs", "-a", app).stdout
    assert host in heroku("certs:info", "-a", app).stdout
    heroku("domains:add", host, "-a", app)
    heroku("domains:update", host, "--cert", name, "-a", app)
    domain = platform.client().get(f"/apps/{app}/domains/{host}").json()
    assert domain["sni_endpoint"]["name"] == name
    crt2, key2 = _self_signed(tmp_path, host, "second")
    heroku("certs:update", str(crt2), str(key2), "-a", app, "--confirm", app)
    after = platform.client().get(f"/apps/{app}/sni-endpoints").json()[0]
    assert after["certificate_chain"].strip() == crt2.read_text().strip()
    heroku("domains:remove", host, "-a", app)
    heroku("certs:remove", "-a", app, "--confirm", app)
    assert platform.client().get(f"/apps/{app}/sni-endpoints").json() == []


def test_buildpacks_topic(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    py = "https://github.com/heroku/heroku-buildpack-python"
    node = "https://github.com/heroku/heroku-buildpack-nodejs"

    def installed() -> list[str]:
        rows = platform.client().get(f"/apps/{app}/buildpack-installations").json()
        return [r["buildpack"]["url"] for r in rows]

    heroku("buildpacks:add", py, "-a", app)
    heroku("buildpacks:add", node, "-a", app, "--index", "1")
    assert installed() == [node, py]
    out = heroku("buildpacks", "-a", app).stdout
    assert "1. " + node in out and "2. " + py in out
    heroku("buildpacks:remove", node, "-a", app)
    assert installed() == [py]
    heroku("buildpacks:clear", "-a", app)
    assert installed() == []


def test_config_edit_and_apps_open(heroku: HerokuCLI, app: str, tmp_path: Path) -> None:
    """config:edit runs $EDITOR on the config and asks before it saves; apps:open hands the
    app's web_url to the desktop's opener (a stand-in browser records it)."""
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\necho EDITED=yes >> "$1"\n')
    opener_dir = tmp_path / "bin"
    opener_dir.mkdir()
    opened = tmp_path / "opened.txt"
    (opener_dir / "xdg-open").write_text(f'#!/bin/sh\necho "$@" >> {opened}\n')
    for script in (editor, opener_dir / "xdg-open"):
        script.chmod(0o755)
    env = dict(heroku.env, EDITOR=str(editor), VISUAL=str(editor))
    # the `open` package runs its own copy of xdg-open, which, with no desktop, hands the
    # URL to $BROWSER
    env["PATH"] = f"{opener_dir}:{env['PATH']}"
    env["BROWSER"] = str(opener_dir / "xdg-open")
    for desktop in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP"):
        env.pop(desktop, None)
    binary = str(heroku.bin_dir / "heroku")
    res = subprocess.run(
        [binary, "config:edit", "-a", app],
        env=env,
        input="y\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "+ EDITED=yes" in res.stdout, res.stdout + res.stderr
    assert heroku("config:get", "EDITED", "-a", app).stdout.strip() == "yes"
    heroku("config:unset", "EDITED", "-a", app)
    res = subprocess.run(
        [binary, "apps:open", "-a", app, "/health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    web_url = json.loads(heroku("apps:info", "-a", app, "--json").stdout)["app"]["web_url"]
    assert wait_for(lambda: opened.exists() and opened.read_text(), 10, what="xdg-open")
    assert opened.read_text().strip() == web_url.rstrip("/") + "/health"


def test_addons_open(
    heroku: HerokuCLI, app: str, platform: RunningPlatform, tmp_path: Path
) -> None:
    """addons:open hands the add-on's web_url (its dashboard page) to the desktop's opener;
    --show-url prints it; the page is for those who see the add-on, and no one else."""
    name = f"{app}-open"
    heroku("addons:create", "heroku-redis:mini", "-a", app, "--name", name)
    addon_id = platform.client().get(f"/apps/{app}/addons/{name}").json()["id"]
    dash = platform.endpoints["api_url"] + "/dashboard"
    url = heroku("addons:open", name, "-a", app, "--show-url").stdout.strip()
    assert url == f"{dash}/addons/{addon_id}"
    sso = platform.client().get(f"/apps/{app}/addons/{name}/sso").json()  # HEROKU_SUDO's
    assert sso == {"action": url, "method": "get", "params": {}}
    opener_dir = tmp_path / "bin"
    opener_dir.mkdir()
    opened = tmp_path / "opened.txt"
    (opener_dir / "xdg-open").write_text(f'#!/bin/sh\necho "$@" >> {opened}\n')
    (opener_dir / "xdg-open").chmod(0o755)
    env = dict(heroku.env, PATH=f"{opener_dir}:{heroku.env['PATH']}")
    env["BROWSER"] = str(opener_dir / "xdg-open")
    for desktop in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP"):
        env.pop(desktop, None)
    res = subprocess.run(
        [str(heroku.bin_dir / "heroku"), "addons:open", "REDIS", "-a", app],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert wait_for(lambda: opened.exists() and opened.read_text(), 10, what="xdg-open")
    assert opened.read_text().strip() == url

    def page(key: str) -> httpx.Response:
        with httpx.Client(follow_redirects=False) as browser:
            signed_in = browser.post(dash + "/login", data={"api_key": key})
            assert signed_in.status_code in (302, 303), signed_in.text[:300]
            return browser.get(url)

    mine = page(heroku.env["HEROKU_API_KEY"])
    assert mine.status_code == 200 and name in mine.text and "heroku-redis:mini" in mine.text
    assert 'data-attachment="REDIS"' in mine.text and "REDIS_URL" in mine.text
    email = f"hkopen-{uuid.uuid4().hex[:6]}@example.com"
    res = platform.cli("users:create", email, "--home", str(platform.home), check=True)
    stranger = page(res.stdout.strip().splitlines()[-1].split("API key: ")[1])
    assert stranger.status_code in (403, 404) and name not in stranger.text
    heroku("addons:destroy", name, "-a", app, "--confirm", app)
