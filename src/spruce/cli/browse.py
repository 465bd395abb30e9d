"""apps:open (`open`), addons:docs, addons:open: a URL for a browser, or printed.

A browser is used only when there is one to show (a terminal on a desktop: DISPLAY,
WAYLAND_DISPLAY, BROWSER or macOS); otherwise, and with --show-url, the URL is printed
alone on stdout, so `curl "$(spruce open)"` works on a server.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import click

from .base import app_option, cli, client, resolve_app
from .client import Client, CLIError

# Spruce's own pages for its add-ons (in a source checkout), by service name and anchor.
_DOCS = Path(__file__).resolve().parents[3] / "docs" / "addons.md"
_ANCHORS = {
    "heroku-redis": "key-value-store-heroku-redis",
    "heroku-postgresql": "postgres-heroku-postgresql",
}


def _has_browser() -> bool:
    if not sys.stdout.isatty():
        return False
    return bool(
        sys.platform == "darwin"
        or os.environ.get("BROWSER")
        or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
    )


def show(url: str, show_url: bool = False) -> None:
    """Open `url` in a browser, or print it when there is none (or when asked to)."""
    if show_url or not _has_browser():
        click.echo(url)
        return
    click.echo(f"Opening {url}...")
    if not webbrowser.open(url):
        click.echo(url)


@cli.command("apps:open")
@click.argument("path", required=False)
@app_option
@click.option("--show-url", is_flag=True, help="show URL, do not open browser")
def apps_open(app: str, path: str | None, show_url: bool) -> None:
    """Open the app in a web browser (print its URL without one)."""
    info = client().get(f"/apps/{quote(app, safe='')}")
    show(urljoin(info["web_url"], path or ""), show_url)


def docs_url(service: str) -> str:
    """Spruce's page for its own add-ons when the docs are at hand, else Heroku's article."""
    anchor = _ANCHORS.get(service)
    if anchor and _DOCS.is_file():
        return f"{_DOCS.as_uri()}#{anchor}"
    return f"https://devcenter.heroku.com/articles/{quote(service, safe='')}"


def _service_of(c: Client, addon: str, app: str | None) -> str:
    """The add-on service named by a service (`heroku-redis[:plan]`) or an add-on name."""
    ident = addon.split(":")[0]
    resp = c._http.get(f"/addon-services/{quote(ident, safe='')}")
    if resp.status_code == 200:
        return str(resp.json()["name"])
    resolved = c.post("/actions/addons/resolve", {"addon": addon, "app": app})[0]
    return str(resolved["addon_service"]["name"])


def _optional_app(app: str | None) -> str | None:
    try:
        return resolve_app(app)
    except CLIError:
        return None


@cli.command("addons:docs")
@click.argument("addon")
@click.option("-a", "--app", "app", help="app to run command against")
@click.option("--show-url", is_flag=True, help="show URL, do not open browser")
def addons_docs(addon: str, app: str | None, show_url: bool) -> None:
    """Open an add-on's documentation in your browser (print its URL without one)."""
    show(docs_url(_service_of(client(), addon, _optional_app(app))), show_url)


@cli.command("addons:open")
@click.argument("addon")
@click.option("-a", "--app", "app", help="app to run command against")
@click.option("--show-url", is_flag=True, help="show URL, do not open browser")
def addons_open(addon: str, app: str | None, show_url: bool) -> None:
    """Open an add-on's dashboard in your browser (print its URL without one)."""
    c = client()
    resolved: dict[str, Any] = c.post(
        "/actions/addons/resolve", {"addon": addon, "app": _optional_app(app)}
    )[0]
    if not resolved.get("web_url"):
        service = resolved["addon_service"]["name"]
        info = {"heroku-redis": " or spruce redis:info", "heroku-postgresql": " or spruce pg:info"}
        raise CLIError(
            f"{resolved['name']} has no dashboard on Spruce.\n"
            f"See it with spruce addons:info {resolved['name']}{info.get(service, '')}, "
            f"and its documentation with spruce addons:docs {service}."
        )
    show(str(resolved["web_url"]), show_url)
