"""The app's git remote, set up so that `git push` works whatever git's CA settings are.

Over HTTPS, the platform's internal CA is trusted for the git host only, twice over:
`http.<url>.sslCAInfo` (used when nothing else names a CA file) and `http.<url>.sslCAPath`,
a directory holding just that CA. git lets `GIT_SSL_CAINFO` replace any configured CA file,
but curl reads the CA directory as well, so a shell exporting `GIT_SSL_CAINFO` (many do)
still verifies Spruce's certificate. `--http-git` uses the plain-HTTP endpoint on the API
port instead (`<api>/git/<app>.git`), which needs no CA at all. Either way this CLI is git's
credential helper for that URL (any user name, the API key as password).

After setting the remote, `git ls-remote` checks it; when something still stands in the way
(`GIT_SSL_CAPATH` replaces the CA directory too), a warning names the fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlparse

import click

from .base import cli, client, resolve_app
from .client import Client, CLIError, config_dir, resolve_target
from .output import warn

CHECK_TIMEOUT = 30.0


def http_git_url(api_url: str, app_name: str) -> str:
    """The plain-HTTP git URL of an app: the API's `/git/<app>.git`."""
    return f"{api_url.rstrip('/')}/git/{quote(app_name, safe='')}.git"


def remote_base(url: str) -> str:
    """The URL prefix git's per-URL settings apply to: `scheme://host:port/<path>/`."""
    return url.rsplit("/", 1)[0] + "/"


def in_git_repo(cwd: str | None = None) -> bool:
    try:
        res = subprocess.run(["git", "rev-parse", "--git-dir"], capture_output=True, cwd=cwd)
    except OSError:
        return False
    return res.returncode == 0


def store_ca(pem: str, directory: Path | None = None) -> Path:
    """Keep the CA in a directory of its own (one per CA): `ca.pem`, plus `<hash>.0` for
    curl built with OpenSSL, which looks CAs up by subject hash (GnuTLS reads every file)."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    d = directory or config_dir() / "ca" / digest
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.pem").write_text(pem)
    name = _subject_hash_name(pem)
    if name:
        (d / name).write_text(pem)
    return d


def _subject_hash_name(pem: str) -> str | None:
    try:
        from OpenSSL import crypto  # pyOpenSSL, which acme depends on
    except ImportError:
        return None
    try:
        cert = crypto.load_certificate(crypto.FILETYPE_PEM, pem.encode())
        return f"{cert.subject_name_hash() & 0xFFFFFFFF:08x}.0"
    except crypto.Error:
        return None


def fetch_ca(c: Client) -> str | None:
    """The platform's internal CA certificate (`/spruce/ca.pem`), None when unavailable."""
    try:
        resp = c._http.get("/spruce/ca.pem")
    except Exception:
        return None
    if resp.status_code != 200 or "BEGIN CERTIFICATE" not in resp.text:
        return None
    return resp.text


def _git_config(key: str, value: str, cwd: str | None) -> None:
    subprocess.run(["git", "config", key, value], capture_output=True, cwd=cwd)


def credential_helper() -> str:
    return f"!{shlex.quote(sys.executable)} -m spruce.cli.main git:credentials"


def configure_remote(name: str, url: str, ca_pem: str | None, cwd: str | None = None) -> None:
    """Point remote `name` at `url`, with the credential helper and (HTTPS) the CA."""
    subprocess.run(["git", "remote", "remove", name], capture_output=True, cwd=cwd)
    subprocess.run(["git", "remote", "add", name, url], capture_output=True, cwd=cwd)
    base = remote_base(url)
    _git_config(f"credential.{base}.helper", credential_helper(), cwd)
    if url.startswith("https://") and ca_pem:
        ca_dir = store_ca(ca_pem)
        _git_config(f"http.{base}.sslCAInfo", str(ca_dir / "ca.pem"), cwd)
        _git_config(f"http.{base}.sslCAPath", str(ca_dir), cwd)


def check_remote(name: str, app_name: str, cwd: str | None = None) -> list[str]:
    """Ask the remote for its refs as `git push` would; what stands in the way, if anything,
    as warning lines (the last one the fix)."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        res = subprocess.run(
            ["git", "ls-remote", "--heads", name],
            capture_output=True, text=True, cwd=cwd, env=env, timeout=CHECK_TIMEOUT,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"Could not check the git remote {name}: {e}."]
    if res.returncode == 0:
        return []
    err = res.stderr.strip()
    last = err.splitlines()[-1] if err else f"git ls-remote exited {res.returncode}"
    plain = f"spruce git:remote -a {app_name} --http-git"
    if "certificate" in err.lower() or "ssl" in err.lower():
        if os.environ.get("GIT_SSL_CAPATH"):
            cause = "GIT_SSL_CAPATH overrides the CA that Spruce set for this remote"
            fix = f"Fix: unset GIT_SSL_CAPATH, or push over plain HTTP: {plain}"
        else:
            cause = "a git or curl setting overrides the CA that Spruce set for this remote"
            fix = f"Fix: push over plain HTTP: {plain}"
        return [f"git cannot verify Spruce's certificate ({last}): {cause}.", fix]
    if "Authentication failed" in err or "could not read Username" in err:
        return [f"git could not log in to {name} ({last}).", "Fix: spruce login, then retry."]
    return [f"git cannot reach the remote {name} yet: {last}"]


def add_remote(
    c: Client, name: str, app_name: str, git_url: str, http_git: bool = False
) -> str | None:
    """Set up the app's remote in the current repository (if in one); its URL."""
    if not in_git_repo():
        return None
    plain = http_git_url(c.api_url, app_name)
    url = plain if http_git else git_url
    configure_remote(name, url, fetch_ca(c) if url.startswith("https://") else None)
    # The plain-HTTP URL works ad hoc too (`git push <api>/git/<app>.git main`).
    _git_config(f"credential.{remote_base(plain)}.helper", credential_helper(), None)
    click.echo(f"Git remote {name} added")
    host = urlparse(url).hostname or ""
    if url.startswith("http://") and not _is_loopback(host):
        warn(f"{url} is plain HTTP: your API key crosses the network unencrypted.")
    for line in check_remote(name, app_name):
        warn(line)
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@cli.command("git:remote")
@click.option("-a", "--app", "app", help="the app to set as the git remote")
@click.option(
    "-r", "--remote", "remote_name", default="spruce", show_default=True,
    help="the git remote to create",
)  # fmt: skip
@click.option(
    "--http-git", is_flag=True, help="use plain HTTP on the API port (no TLS, no CA to trust)"
)
def git_remote(app: str | None, remote_name: str, http_git: bool) -> None:
    """Add a git remote for an app to this repository."""
    name = resolve_app(app)
    if not in_git_repo():
        raise CLIError("Not a git repository: run git init first.")
    c = client()
    info = c.get(f"/apps/{quote(name, safe='')}")
    url = add_remote(c, remote_name, info["name"], info["git_url"], http_git)
    click.echo(f"set git remote {remote_name} to {url}")


@cli.command("git:credentials", hidden=True)
@click.argument("operation")
def git_credentials(operation: str) -> None:
    """git credential helper: answers `get` with the API key as the password."""
    if operation != "get":
        return
    _, key = resolve_target()
    click.echo("username=spruce")
    click.echo(f"password={key}")
