"""telemetry, telemetry:add, telemetry:info, telemetry:update, telemetry:remove (Fir), with
what Heroku's CLI prints (src/commands/telemetry/*.ts)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from .base import cli, client
from .client import CLIError
from .output import action, done, key_values, styled_header, table

SIGNALS = ("traces", "metrics", "logs")
TRANSPORTS = {"http": "otlphttp", "grpc": "otlp"}


def _q(s: str) -> str:
    return quote(s, safe="")


def _signals(value: str) -> list[str]:
    if not value or value == "all":
        return list(SIGNALS)
    parts = value.split(",")
    if any(p not in SIGNALS for p in parts):
        raise CLIError(
            f"Invalid signal option: {','.join(parts)}. "
            "Run heroku telemetry:add --help to see signal options."
        )
    return parts


def _headers(value: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(value or "{}")
    except ValueError:
        raise CLIError('--headers must be a JSON object, e.g. \'{"x-api-key": "KEY"}\'.') from None
    if not isinstance(parsed, dict):
        raise CLIError('--headers must be a JSON object, e.g. \'{"x-api-key": "KEY"}\'.')
    return parsed


def _exactly_one(app: str | None, space: str | None) -> None:
    if bool(app) == bool(space):
        raise CLIError("Exactly one of --app or --space is required.")


def _owner_list(app: str | None, space: str | None) -> list[dict[str, Any]]:
    path = f"/apps/{_q(app)}" if app else f"/spaces/{_q(space or '')}"
    rows: list[dict[str, Any]] = client().get(path + "/telemetry-drains")
    return rows


def show(drain: dict[str, Any]) -> None:
    styled_header(drain["id"])
    owner = drain["owner"]
    pairs: list[tuple[str, Any]] = []
    if owner["type"] == "space":
        pairs.append(("Space", f"⬡ {client().get('/spaces/' + _q(owner['id']))['name']}"))
    else:
        pairs.append(("App", f"⬢ {client().get('/apps/' + _q(owner['id']))['name']}"))
    exporter = drain["exporter"]
    pairs += [
        ("Signals", ", ".join(drain["signals"])),
        ("Endpoint", exporter["endpoint"]),
        ("Transport", "gRPC" if exporter["type"] == "otlp" else "HTTP"),
    ]
    if exporter.get("headers"):
        pairs.append(("Headers", json.dumps(exporter["headers"], separators=(",", ":"))))
    key_values(pairs)


@cli.command("telemetry")
@click.option("-a", "--app", help="filter by app name")
@click.option("-s", "--space", help="filter by space name")
def telemetry(app: str | None, space: str | None) -> None:
    """List telemetry drains (Fir apps and spaces)."""
    _exactly_one(app, space)
    rows = _owner_list(app, space)
    owner = app or space
    if not rows:
        click.echo(f"There are no telemetry drains in {owner}")
        return
    styled_header(f"{owner} Telemetry Drains")
    table(
        [(d["id"], ",".join(d["signals"]), d["exporter"]["endpoint"]) for d in rows],
        ["ID", "Signals", "Endpoint"],
    )


@cli.command("telemetry:add")
@click.argument("endpoint")
@click.option("-a", "--app", help="app to add a drain to")
@click.option("-s", "--space", help="space to add a drain to")
@click.option("--signals", default="all", help="comma-delimited: traces, metrics, logs, or all")
@click.option("--transport", default="http", help="transport protocol for the drain (http, grpc)")
@click.option("--headers", help="custom headers to configure the drain in json format")
def telemetry_add(
    endpoint: str,
    app: str | None,
    space: str | None,
    signals: str,
    transport: str,
    headers: str | None,
) -> None:
    """Add a telemetry drain (all signals unless --signals says otherwise)."""
    _exactly_one(app, space)
    if transport not in TRANSPORTS:
        raise CLIError(f"Expected --transport={transport} to be one of: http, grpc")
    api = client()
    owner_id = api.get(f"/apps/{_q(app)}" if app else f"/spaces/{_q(space or '')}")["id"]
    body = {
        "exporter": {
            "endpoint": endpoint,
            "headers": _headers(headers),
            "type": TRANSPORTS[transport],
        },
        "owner": {"id": owner_id, "type": "app" if app else "space"},
        "signals": _signals(signals),
    }
    drain = api.post("/telemetry-drains", body)
    click.echo(f"successfully added drain {drain['exporter']['endpoint']}")


@cli.command("telemetry:info")
@click.argument("telemetry_drain_id")
def telemetry_info(telemetry_drain_id: str) -> None:
    """Show a telemetry drain."""
    show(client().get(f"/telemetry-drains/{_q(telemetry_drain_id)}"))


@cli.command("telemetry:update")
@click.argument("telemetry_drain_id")
@click.option("--signals", help="comma-delimited: traces, metrics, logs, or all")
@click.option("--endpoint", help="drain url")
@click.option("--transport", type=click.Choice(["http", "grpc"]), help="transport protocol")
@click.option("--headers", help="custom headers to configure the drain in json format")
def telemetry_update(
    telemetry_drain_id: str,
    signals: str | None,
    endpoint: str | None,
    transport: str | None,
    headers: str | None,
) -> None:
    """Change a telemetry drain's signals or exporter."""
    if not (signals or endpoint or transport or headers):
        raise CLIError(
            "Requires either --signals, --endpoint, --transport or HEADERS to be provided."
        )
    body: dict[str, Any] = {}
    if signals:
        body["signals"] = _signals(signals)
    exporter: dict[str, Any] = {}
    if headers:
        exporter["headers"] = _headers(headers)
    if endpoint:
        exporter["endpoint"] = endpoint
    if transport:
        exporter["type"] = TRANSPORTS[transport]
    if exporter:
        body["exporter"] = exporter
    action(f"Updating telemetry drain {telemetry_drain_id}", err=True)
    drain = client().patch(f"/telemetry-drains/{_q(telemetry_drain_id)}", body)
    done()
    show(drain)


@cli.command("telemetry:remove")
@click.argument("telemetry_drain_id", required=False)
@click.option("-a", "--app", help="name of the app to remove all drains from")
@click.option("-s", "--space", help="name of the space to remove all drains from")
def telemetry_remove(telemetry_drain_id: str | None, app: str | None, space: str | None) -> None:
    """Remove a telemetry drain, or every drain of an app or space."""
    if not (telemetry_drain_id or app or space):
        raise CLIError("Requires either --app or --space or a TELEMETRY_DRAIN_ID to be provided.")
    api = client()
    if telemetry_drain_id:
        action(f"Removing telemetry drain {telemetry_drain_id}", err=True)
        api.delete(f"/telemetry-drains/{_q(telemetry_drain_id)}")
    else:
        kind, owner = ("app", app) if app else ("space", space)
        action(f"Removing all telemetry drains from {kind} {owner}", err=True)
        for d in _owner_list(app, space):
            api.delete(f"/telemetry-drains/{_q(d['id'])}")
    done()
