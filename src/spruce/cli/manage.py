"""ps:scale, features:*, maintenance:*, access:*."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from .base import app_option, cli, client
from .client import CLIError
from .output import action, done, key_values, print_json, styled_header, table


def _q(s: str) -> str:
    return quote(s, safe="")


def _formation_line(f: dict[str, Any]) -> str:
    return f"{f['type']}={f['quantity']}:{f['size']}"


@cli.command("ps:scale")
@click.argument("args", nargs=-1)
@app_option
def ps_scale(app: str, args: tuple[str, ...]) -> None:
    """Scale dyno quantity up or down (web=2 worker+1 web=1:standard-2x)."""
    c = client()
    if not args:
        formation = c.get_all(f"/apps/{_q(app)}/formation")
        if not formation:
            raise CLIError(f"No process types on ⬢ {app}. Upload a Procfile to add process types.")
        click.echo(" ".join(_formation_line(f) for f in formation))
        return
    # The services' parser (one for the CLI and the MCP tool), imported only to scale;
    # relative amounts (worker+1) are counted by the API, as Heroku's is.
    from spruce.services.errors import InvalidParams
    from spruce.services.formation import parse_scale

    try:
        updates = parse_scale(args)
    except InvalidParams as e:
        raise CLIError(e.message) from None
    action(f"Scaling dynos on ⬢ {app}")
    try:
        result = c.patch(f"/apps/{_q(app)}/formation", {"updates": updates})
    except CLIError as e:
        raise CLIError(e.message + _scale_hint(e.message, updates)) from None
    changed = {u["type"] for u in updates}
    done(
        "done, now running " + ", ".join(_formation_line(f) for f in result if f["type"] in changed)
    )


def _scale_hint(message: str, updates: list[dict[str, Any]]) -> str:
    """Basic (and Eco) dynos run one per process type: name a size that scales."""
    if "size dynos per process type" not in message:
        return ""
    upd = next((u for u in updates if int(u.get("quantity") or 0) > 1), None)
    if upd is None:
        return ""
    return (
        f"\nTo run {upd['quantity']} {upd['type']} dynos, pick a size that scales: "
        f"spruce ps:scale {upd['type']}={upd['quantity']}:standard-1x"
    )


@cli.command("apps:settings")
@click.argument("pairs", nargs=-1)
@app_option
def apps_settings(app: str, pairs: tuple[str, ...]) -> None:
    """Show or set Spruce's per-app settings (boot_timeout=SECONDS formation_limit=N)."""
    c = client()
    if pairs:
        changes: dict[str, Any] = {}
        for p in pairs:
            k, sep, v = p.partition("=")
            if not sep:
                raise CLIError(f"{p} is invalid. Use KEY=VALUE.")
            try:
                changes[k] = int(v) if v.strip().isdigit() else float(v)
            except ValueError:
                raise CLIError(f"{k} must be a number.") from None
        info = c.patch(f"/apps/{_q(app)}", {"spruce_settings": changes})
    else:
        info = c.get(f"/apps/{_q(app)}")
    styled_header(f"{app} Settings")
    key_values(sorted(info["spruce_settings"].items()))


# -- features ------------------------------------------------------------------------
@cli.command("features")
@app_option
@click.option("--json", "as_json", is_flag=True)
def features_list(app: str, as_json: bool) -> None:
    """List available app features."""
    feats = client().get_all(f"/apps/{_q(app)}/features")
    if as_json:
        print_json(feats)
        return
    styled_header(f"App Features ⬢ {app}")
    width = max(len(f["name"]) for f in feats)
    for f in feats:
        mark = "[+]" if f["enabled"] else "[ ]"
        click.echo(f"{mark} {f['name'].ljust(width)}  {f['description']}")


@cli.command("features:info")
@click.argument("feature")
@app_option
@click.option("--json", "as_json", is_flag=True)
def features_info(app: str, feature: str, as_json: bool) -> None:
    """Display information about a feature."""
    f = client().get(f"/apps/{_q(app)}/features/{_q(feature)}")
    if as_json:
        print_json(f)
        return
    styled_header(f["name"])
    key_values(
        [
            ("Description", f["description"]),
            ("Docs", f["doc_url"]),
            ("Enabled", "true" if f["enabled"] else "false"),
        ]
    )


def _toggle(app: str, feature: str, enabled: bool) -> None:
    c = client()
    current = c.get(f"/apps/{_q(app)}/features/{_q(feature)}")
    if current["enabled"] == enabled:
        raise CLIError(f"{feature} is already {'enabled' if enabled else 'disabled'}.")
    action(f"{'Enabling' if enabled else 'Disabling'} {feature} for ⬢ {app}")
    c.patch(f"/apps/{_q(app)}/features/{_q(feature)}", {"enabled": enabled})
    done()


@cli.command("features:enable")
@click.argument("feature")
@app_option
def features_enable(app: str, feature: str) -> None:
    """Enable an app feature."""
    _toggle(app, feature, True)


@cli.command("features:disable")
@click.argument("feature")
@app_option
def features_disable(app: str, feature: str) -> None:
    """Disable an app feature."""
    _toggle(app, feature, False)


# -- maintenance -----------------------------------------------------------------------
@cli.command("maintenance")
@app_option
def maintenance(app: str) -> None:
    """Display the current maintenance status of app."""
    click.echo("on" if client().get(f"/apps/{_q(app)}")["maintenance"] else "off")


@cli.command("maintenance:on")
@app_option
def maintenance_on(app: str) -> None:
    """Put the app into maintenance mode."""
    action(f"Enabling maintenance mode for ⬢ {app}")
    client().patch(f"/apps/{_q(app)}", {"maintenance": True})
    done()


@cli.command("maintenance:off")
@app_option
def maintenance_off(app: str) -> None:
    """Take the app out of maintenance mode."""
    action(f"Disabling maintenance mode for ⬢ {app}")
    client().patch(f"/apps/{_q(app)}", {"maintenance": False})
    done()


# -- access ----------------------------------------------------------------------------
@cli.command("access")
@app_option
@click.option("--json", "as_json", is_flag=True)
def access_list(app: str, as_json: bool) -> None:
    """List who has access to an app."""
    rows = client().get_all(f"/apps/{_q(app)}/collaborators")
    if as_json:
        print_json(rows)
        return
    styled_header(f"{app} Access List")
    table([(r["user"]["email"], r["role"]) for r in rows], ["Email", "Role"])


@cli.command("access:add")
@click.argument("email")
@app_option
@click.option("-p", "--permissions", help="list of permissions (accepted for compatibility)")
def access_add(app: str, email: str, permissions: str | None) -> None:
    """Add new users to your app."""
    action(f"Adding {email} access to the app {app}")
    client().post(f"/apps/{_q(app)}/collaborators", {"user": email, "silent": False})
    done()


@cli.command("access:remove")
@click.argument("email")
@app_option
def access_remove(app: str, email: str) -> None:
    """Remove users from an app."""
    action(f"Removing {email} access from the app {app}")
    client().delete(f"/apps/{_q(app)}/collaborators/{_q(email)}")
    done()
