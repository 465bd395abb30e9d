"""addons:*, redis:*, pg:*."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from .base import app_option, cli, client
from .client import CLIError
from .output import action, done, key_values, print_json, styled_header, table


def _q(s: str) -> str:
    return quote(s, safe="")


@cli.command("addons")
@app_option
@click.option("--json", "as_json", is_flag=True)
def addons(app: str, as_json: bool) -> None:
    """List your add-ons and attachments."""
    c = client()
    rows = c.get_all(f"/apps/{_q(app)}/addons")
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"No add-ons for app {app}.")
        return
    attachments = c.get_all(f"/apps/{_q(app)}/addon-attachments")
    out = []
    for a in rows:
        names = [x["name"] for x in attachments if x["addon"]["id"] == a["id"]]
        out.append(
            (
                a["addon_service"]["name"] + f" ({a['name']})",
                a["plan"]["name"].split(":")[-1],
                "free",
                a["state"],
                ", ".join(f"as {n}" for n in names),
            )
        )
    table(out, ["Add-on", "Plan", "Price", "State", "Attachments"])


@cli.command("addons:create")
@click.argument("service_plan")
@app_option
@click.option("--as", "as_name", help="name for the initial add-on attachment")
@click.option("--name", help="name for the add-on resource")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--wait", is_flag=True, help="accepted for compatibility (provisioning is synchronous)"
)
@click.argument("config", nargs=-1)
def addons_create(
    app: str,
    service_plan: str,
    as_name: str | None,
    name: str | None,
    as_json: bool,
    wait: bool,
    config: tuple[str, ...],
) -> None:
    """Create a new add-on resource (heroku-redis:mini, heroku-postgresql:essential-0)."""
    opts: dict[str, str] = {}
    for item in config:
        k, sep, v = item.lstrip("-").partition("=")
        if not sep:
            raise CLIError(f"Invalid config option {item}: use --key=value.")
        opts[k] = v
    body: dict[str, Any] = {"plan": {"name": service_plan}, "config": opts}
    if as_name:
        body["attachment"] = {"name": as_name}
    if name:
        body["name"] = name
    if as_json:
        print_json(client().post(f"/apps/{_q(app)}/addons", body))
        return
    action(f"Creating {service_plan} on ⬢ {app}")
    a = client().post(f"/apps/{_q(app)}/addons", body)
    done("free")
    click.echo(f"Created {a['name']} as {', '.join(a['config_vars'])}")
    click.echo(f"Use spruce addons:docs {a['addon_service']['name']} to view documentation")


@cli.command("addons:info")
@click.argument("addon")
@app_option
@click.option("--json", "as_json", is_flag=True)
def addons_info(app: str, addon: str, as_json: bool) -> None:
    """Show detailed add-on resource and attachment information."""
    c = client()
    a = c.post("/actions/addons/resolve", {"addon": addon, "app": app})[0]
    if as_json:
        print_json(a)
        return
    atts = c.get(f"/addons/{a['id']}/addon-attachments")
    styled_header(a["name"])
    key_values(
        [
            ("Attachments", ", ".join(f"{x['app']['name']}::{x['name']}" for x in atts)),
            ("Installed at", a["created_at"]),
            ("Owning app", a["app"]["name"]),
            ("Plan", a["plan"]["name"]),
            ("Price", "free"),
            ("State", a["state"]),
        ]
    )


@cli.command("addons:attach")
@click.argument("addon")
@app_option
@click.option("--as", "as_name", help="name for add-on attachment")
@click.option("--confirm", help="overwrite existing add-on attachment with same name")
def addons_attach(app: str, addon: str, as_name: str | None, confirm: str | None) -> None:
    """Attach an existing add-on resource to an app."""
    action(f"Attaching {addon}{' as ' + as_name if as_name else ''} to ⬢ {app}")
    att = client().post(
        "/addon-attachments", {"addon": addon, "app": app, "name": as_name, "confirm": confirm}
    )
    done()
    click.echo(f"Setting {att['name']} config vars and restarting ⬢ {app}... done")


@cli.command("addons:detach")
@click.argument("attachment")
@app_option
def addons_detach(app: str, attachment: str) -> None:
    """Detach an existing add-on resource from an app."""
    c = client()
    att = c.get(f"/apps/{_q(app)}/addon-attachments/{_q(attachment)}")
    action(f"Detaching {att['name']} to {att['addon']['name']} from ⬢ {app}")
    c.delete(f"/addon-attachments/{att['id']}")
    done()


@cli.command("addons:destroy")
@click.argument("addons_", nargs=-1, required=True, metavar="ADDON...")
@app_option
@click.option("-c", "--confirm", help="the app name (or add-on name) to confirm")
@click.option(
    "-f", "--force", is_flag=True, help="allow destruction even if connected to other apps"
)
def addons_destroy(app: str, addons_: tuple[str, ...], confirm: str | None, force: bool) -> None:
    """Permanently destroy an add-on resource (its data is deleted)."""
    c = client()
    for name in addons_:
        a = c.post("/actions/addons/resolve", {"addon": name, "app": app})[0]
        if confirm not in (app, a["name"], a["app"]["name"]):
            if not sys.stdin.isatty():
                raise CLIError(
                    f"This command requires confirmation. Re-run with --confirm {a['app']['name']}."
                )
            answer = click.prompt(
                f" ▸    To proceed, type {a['app']['name']}", default="", show_default=False
            )
            if answer != a["app"]["name"]:
                raise CLIError("Confirmation did not match. Aborted.")
        action(f"Destroying {a['name']} on ⬢ {a['app']['name']}")
        c.delete(
            f"/apps/{_q(a['app']['name'])}/addons/{a['id']}", {"force": force, "confirm": a["name"]}
        )
        done()


@cli.command("addons:rename")
@click.argument("addon")
@click.argument("new_name")
@app_option
def addons_rename(app: str, addon: str, new_name: str) -> None:
    """Rename an add-on."""
    c = client()
    a = c.post("/actions/addons/resolve", {"addon": addon, "app": app})[0]
    c.patch(f"/apps/{_q(a['app']['name'])}/addons/{a['id']}", {"name": new_name})
    click.echo(f"{a['name']} successfully renamed to {new_name}.")


@cli.command("addons:services")
@click.option("--json", "as_json", is_flag=True)
def addons_services(as_json: bool) -> None:
    """List all available add-on services."""
    rows = client().get_all("/addon-services")
    if as_json:
        print_json(rows)
        return
    table([(r["name"], r["human_name"], r["state"]) for r in rows], ["Slug", "Name", "State"])


@cli.command("addons:plans")
@click.argument("service")
@click.option("--json", "as_json", is_flag=True)
def addons_plans(service: str, as_json: bool) -> None:
    """List all available plans for an add-on service."""
    rows = client().get_all(f"/addon-services/{_q(service)}/plans")
    if as_json:
        print_json(rows)
        return
    table(
        [
            (
                "default" if r["default"] else "",
                r["name"],
                r["human_name"],
                r.get("limits_summary", ""),
            )
            for r in rows
        ],
        ["", "Slug", "Name", "Limits"],
    )


# -- data commands -----------------------------------------------------------------------
def _resolve(app: str, database: str | None, service: str) -> dict[str, Any]:
    c = client()
    if database:
        return c.post("/actions/addons/resolve", {"addon": database, "app": app})[0]  # type: ignore[no-any-return]
    for a in c.get_all(f"/apps/{_q(app)}/addons"):
        if a["addon_service"]["name"] == service:
            return a  # type: ignore[no-any-return]
    raise CLIError(f"⬢ {app} has no {service} add-on.")


def _info(app: str, database: str | None, service: str) -> None:
    a = _resolve(app, database, service)
    data = client().get(f"/addons/{a['id']}/actions/info")
    styled_header(f"{a['name']} ({a['plan']['name']})")
    key_values([(i["name"], ", ".join(i["values"])) for i in data["info"]])


def _shell(app: str, database: str | None, service: str, tool: str, extra: list[str]) -> None:
    a = _resolve(app, database, service)
    conn = client().get(f"/addons/{a['id']}/actions/connection")
    argv = list(conn["argv"])
    if not shutil.which(argv[0]) and not Path(argv[0]).exists():
        raise CLIError(
            f"{tool} is not installed on this machine (apt-get install {'redis-tools' if tool == 'redis-cli' else 'postgresql-client'})."
        )
    env = dict(os.environ)
    env.update(conn["env"])
    sys.exit(subprocess.call(argv + extra, env=env))


@cli.command("redis:info")
@click.argument("database", required=False)
@app_option
def redis_info(app: str, database: str | None) -> None:
    """Get information about a Key-Value Store."""
    _info(app, database, "heroku-redis")


@cli.command("redis:cli")
@click.argument("database", required=False)
@app_option
def redis_cli(app: str, database: str | None) -> None:
    """Open a redis-cli shell to the Key-Value Store."""
    _shell(app, database, "heroku-redis", "redis-cli", [])


@cli.command("redis:credentials")
@click.argument("database", required=False)
@app_option
@click.option("--reset", is_flag=True, help="reset credentials")
def redis_credentials(app: str, database: str | None, reset: bool) -> None:
    """Display credentials, or reset them with --reset."""
    _credentials(app, database, "heroku-redis", reset)


def _credentials(app: str, database: str | None, service: str, reset: bool) -> None:
    """Print the add-on's URLs as the app sees them, or rotate its credentials."""
    a = _resolve(app, database, service)
    c = client()
    if reset:
        action(f"Resetting credentials for {a['name']}")
        c.post(f"/addons/{a['id']}/actions/credentials-reset")
        done()
        return
    config = c.get(f"/apps/{_q(app)}/config-vars")
    for var in a["config_vars"]:
        if var in config:
            click.echo(f"{var}: {config[var]}")


def _redis_settings(app: str, database: str | None, body: dict[str, Any]) -> dict[str, Any]:
    a = _resolve(app, database, "heroku-redis")
    return client().patch(f"/addons/{a['id']}/actions/redis-settings", body)  # type: ignore[no-any-return]


@cli.command("redis:maxmemory")
@click.argument("database", required=False)
@app_option
@click.option("-p", "--policy", required=True, help="set the key eviction policy")
def redis_maxmemory(app: str, database: str | None, policy: str) -> None:
    """Set the key eviction policy when instances reach their storage limit."""
    s = _redis_settings(app, database, {"maxmemory_policy": policy})
    click.echo(f"Maxmemory policy set to {s.get('maxmemory_policy', policy)}.")


@cli.command("redis:timeout")
@click.argument("database", required=False)
@app_option
@click.option(
    "-s", "--seconds", type=int, required=True, help="timeout value in seconds (0 = never)"
)
def redis_timeout(app: str, database: str | None, seconds: int) -> None:
    """Set the number of seconds to wait before killing idle connections."""
    _redis_settings(app, database, {"timeout": seconds})
    click.echo(
        f"Timeout set to {seconds} seconds."
        if seconds
        else "Connections will no longer be timed out."
    )


@cli.command("redis:keyspace-notifications")
@click.argument("database", required=False)
@app_option
@click.option(
    "-c",
    "--config",
    "flags",
    required=True,
    help="notification configuration string (e.g. KEA, or '' to disable)",
)
def redis_keyspace_notifications(app: str, database: str | None, flags: str) -> None:
    """Set the keyspace notifications configuration."""
    _redis_settings(app, database, {"notify_keyspace_events": flags})
    click.echo(f"Keyspace notifications set to '{flags}'.")


@cli.command("pg:info")
@click.argument("database", required=False)
@app_option
def pg_info(app: str, database: str | None) -> None:
    """Show database information."""
    _info(app, database, "heroku-postgresql")


@cli.command("pg:psql", context_settings={"ignore_unknown_options": True})
@click.argument("database", required=False)
@app_option
@click.option("-c", "--command", "sql", help="SQL command to run")
def pg_psql(app: str, database: str | None, sql: str | None) -> None:
    """Open a psql shell to the database."""
    _shell(app, database, "heroku-postgresql", "psql", ["-c", sql] if sql else [])


@cli.command("pg:credentials")
@click.argument("database", required=False)
@app_option
@click.option("--reset", is_flag=True, help="reset credentials")
def pg_credentials(app: str, database: str | None, reset: bool) -> None:
    """Show or reset database credentials."""
    _credentials(app, database, "heroku-postgresql", reset)


@cli.command("pg:ps")
@click.argument("database", required=False)
@app_option
def pg_ps(app: str, database: str | None) -> None:
    """View active queries with execution time."""
    a = _resolve(app, database, "heroku-postgresql")
    rows = client().get(f"/addons/{a['id']}/actions/ps")
    table(
        [
            (
                r.get("pid"),
                r.get("state"),
                r.get("duration") or r.get("query_start"),
                r.get("query"),
            )
            for r in rows
        ],
        ["pid", "state", "duration", "query"],
    )


@cli.command("pg:locks")
@click.argument("database", required=False)
@app_option
def pg_locks(app: str, database: str | None) -> None:
    """Display queries with active locks."""
    a = _resolve(app, database, "heroku-postgresql")
    rows = client().get(f"/addons/{a['id']}/actions/locks")
    if not rows:
        click.echo("No locks held.")
        return
    keys = list(rows[0])
    table([[r.get(k) for k in keys] for r in rows], keys)


@cli.command("pg:kill")
@click.argument("pid", type=int)
@click.argument("database", required=False)
@app_option
@click.option(
    "-f", "--force", is_flag=True, help="terminate the connection instead of cancelling the query"
)
def pg_kill(app: str, pid: int, database: str | None, force: bool) -> None:
    """Kill a query."""
    a = _resolve(app, database, "heroku-postgresql")
    client().post(f"/addons/{a['id']}/actions/kill", {"pid": pid, "force": force})
    click.echo(f"{'Terminated' if force else 'Cancelled'} query {pid}.")


@cli.command("pg:backups")
@click.argument("database", required=False)
@app_option
def pg_backups(app: str, database: str | None) -> None:
    """List database backups."""
    a = _resolve(app, database, "heroku-postgresql")
    rows = client().get(f"/addons/{a['id']}/actions/backups")
    styled_header("Backups")
    if not rows:
        click.echo("No backups. Capture one with spruce pg:backups:capture")
        return
    table(
        [(r["id"], r["created"], r["size"], a["name"]) for r in rows],
        ["ID", "Created at", "Size", "Database"],
    )


@cli.command("pg:backups:capture")
@click.argument("database", required=False)
@app_option
def pg_backups_capture(app: str, database: str | None) -> None:
    """Capture a new backup."""
    a = _resolve(app, database, "heroku-postgresql")
    action(f"Starting backup of {a['name']}")
    b = client().post(f"/addons/{a['id']}/actions/backups")
    done(f"done, {b['id']} ({b['size']} bytes)")


@cli.command("pg:backups:restore")
@click.argument("backup")
@click.argument("database", required=False)
@app_option
@click.option("--confirm", help="the app name, to confirm")
def pg_backups_restore(app: str, backup: str, database: str | None, confirm: str | None) -> None:
    """Restore a backup (default latest) to a database; its current data is replaced."""
    if confirm != app:
        raise CLIError(f"This command requires confirmation. Re-run with --confirm {app}.")
    a = _resolve(app, database, "heroku-postgresql")
    action(f"Restoring {backup} to {a['name']}")
    client().post(f"/addons/{a['id']}/actions/backups/restore", {"backup": backup})
    done()


@cli.command("pg:backups:download")
@click.argument("backup")
@click.argument("database", required=False)
@app_option
@click.option("-o", "--output", help="location to download to (default latest.dump)")
def pg_backups_download(app: str, backup: str, database: str | None, output: str | None) -> None:
    """Download a backup (pg_dump custom format)."""
    a = _resolve(app, database, "heroku-postgresql")
    c = client()
    resp = c._http.get(f"/addons/{a['id']}/actions/backups/{_q(backup)}")
    if resp.status_code >= 400:
        raise CLIError(resp.json().get("message", "download failed"))
    path = Path(output or "latest.dump")
    path.write_bytes(resp.content)
    click.echo(f"Downloaded {backup} to {path} ({len(resp.content)} bytes).")
