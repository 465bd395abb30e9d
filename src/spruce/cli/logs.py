"""logs, drains, drains:add, drains:remove."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

import click
import httpx

from .base import app_option, cli, client
from .client import CLIError
from .output import print_json, styled_header


def _q(s: str) -> str:
    return quote(s, safe="")


@cli.command("logs")
@app_option
@click.option("-t", "--tail", is_flag=True, help="continually stream logs")
@click.option("-n", "--num", type=int, help="number of lines to display")
@click.option("-s", "--source", help="only show output from this source (app, heroku)")
@click.option(
    "-d", "--dyno", "dyno", hidden=True, help="deprecated: use --process-type or --dyno-name"
)
@click.option("-p", "--process-type", help="only show output from this process type (web, worker)")
@click.option("--dyno-name", help="only show output from this dyno (web.1)")
@click.option(
    "--force-colors", is_flag=True, help="force use of colors (even when not on a terminal)"
)
def logs(
    app: str,
    tail: bool,
    num: int | None,
    source: str | None,
    dyno: str | None,
    process_type: str | None,
    dyno_name: str | None,
    force_colors: bool,
) -> None:
    """Display recent log output."""
    c = client()
    info = c.get(f"/apps/{_q(app)}")
    gen = info.get("generation")
    fir = (gen.get("name") if isinstance(gen, dict) else gen) == "fir"
    if fir:
        tail = True  # Heroku CLI v10: Fir logs always stream
        click.echo("Fetching logs...\n", err=True)
    body: dict[str, Any] = {"tail": tail}
    if num is not None:
        body["lines"] = num
    if source:
        body["source"] = source
    target = dyno_name or process_type or dyno
    if target:
        body["dyno"] = target
    session = c.post(f"/apps/{_q(app)}/log-sessions", body)
    color = force_colors or sys.stdout.isatty()
    from spruce.logs import format_line  # here: importing spruce.logs costs every command 1 s

    try:
        with httpx.stream(
            "GET", session["logplex_url"], timeout=httpx.Timeout(30, read=None)
        ) as resp:
            if resp.status_code >= 400:
                raise CLIError(f"Could not read the logs (HTTP {resp.status_code}).")
            for line in resp.iter_lines():
                if line:
                    click.echo(format_line(line, color=color))
                    sys.stdout.flush()
    except httpx.HTTPError as e:
        raise CLIError(f"The log stream broke: {type(e).__name__}.") from None
    except KeyboardInterrupt:
        pass


def _drain_json(d: dict[str, Any]) -> dict[str, Any]:
    return d


@cli.command("drains")
@app_option
@click.option("--json", "as_json", is_flag=True)
def drains(app: str, as_json: bool) -> None:
    """List log drains."""
    rows = client().get_all(f"/apps/{_q(app)}/log-drains")
    if as_json:
        print_json(rows)
        return
    styled_header("Drains")
    if not rows:
        click.echo(f"⬢ {app} has no drains.")
    for d in rows:
        click.echo(f"{d['url']} ({d['token']})")


@cli.command("drains:add")
@click.argument("url")
@app_option
def drains_add(app: str, url: str) -> None:
    """Add a log drain (syslog://, syslog+tls:// or https://)."""
    d = client().post(f"/apps/{_q(app)}/log-drains", {"url": url})
    click.echo(f"Successfully added drain {d['url']}")


@cli.command("drains:remove")
@click.argument("url_or_token")
@app_option
def drains_remove(app: str, url_or_token: str) -> None:
    """Remove a log drain (by URL or token)."""
    d = client().delete(f"/apps/{_q(app)}/log-drains/{_q(url_or_token)}")
    click.echo(f"Successfully removed drain {d['url']}")
