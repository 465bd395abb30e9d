"""apps:*, config:*, releases:*, rollback."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Any
from urllib.parse import quote

import click

from .base import app_option, cli, client, resolve_app
from .client import CLIError
from .gitremote import add_remote
from .output import action, done, key_values, print_json, styled_header


def _q(s: str) -> str:
    return quote(s, safe="")


@cli.command("apps")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
@click.option("-A", "--all", "all_", is_flag=True, help="include apps in all teams")
def apps_list(as_json: bool, all_: bool) -> None:
    """List your apps."""
    c = client()
    apps = c.get_all("/apps")
    if as_json:
        print_json(apps)
        return
    account = c.get("/account")
    styled_header(f"{account['email']} Apps")
    if not apps:
        click.echo("You have no apps.")
        return
    for a in apps:
        owner = a["owner"]["email"]
        click.echo(a["name"] if owner == account["email"] else f"{a['name']}  {owner}")


@cli.command("apps:create")
@click.argument("name", required=False)
@click.option("--region", help="specify region for the app to run in")
@click.option("-s", "--stack", help="the stack to create the app on")
@click.option(
    "-r", "--remote", default="spruce", show_default=True, help="the git remote to create"
)
@click.option("-n", "--no-remote", is_flag=True, help="do not create a git remote")
@click.option(
    "--http-git", is_flag=True, help="git remote over plain HTTP on the API port (no CA needed)"
)
@click.option("--json", "as_json", is_flag=True, help="output in json format")
@click.option(
    "--manifest", is_flag=True, help="set the app up from app.json and the code in this directory"
)
@click.option(
    "--generation",
    type=click.Choice(["cedar", "fir"]),
    help="Spruce: the app's generation (Heroku takes it from the app's space)",
)
@click.option("-t", "--team", help="team to create the app in")
@click.option("--space", help="the private space to create the app in")
def apps_create(
    name: str | None,
    region: str | None,
    stack: str | None,
    remote: str,
    no_remote: bool,
    http_git: bool,
    as_json: bool,
    manifest: bool,
    generation: str | None,
    team: str | None,
    space: str | None,
) -> None:
    """Create a new app."""
    body: dict[str, Any] = {}
    for key, value in (("team", team), ("space", space)):
        if value:
            body[key] = value
    if name:
        body["name"] = name
    if generation:
        body["generation"] = generation
    if region:
        body["region"] = region
    if stack:
        body["stack"] = stack
    c = client()
    if manifest:
        _create_from_manifest(c, body, remote, no_remote, http_git)
        return
    if not as_json:
        action(f"Creating {'⬢ ' + name if name else 'app'}")
    # In a team or a space, Heroku's CLI creates a team app; its space sets the generation.
    app = c.post("/teams/apps" if team or space else "/apps", body)
    if as_json:
        print_json(app)
        return
    done(f"done, ⬢ {app['name']}" if not name else "done")
    git_url = app["git_url"]
    if not no_remote:
        git_url = add_remote(c, remote, app["name"], git_url, http_git) or git_url
    click.echo(f"{app['web_url']} | {git_url}")


def _source_tarball() -> bytes:
    """The current directory as a .tgz: the committed tree in a git repo, else the files."""
    import io
    import tarfile
    from pathlib import Path

    inside = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if inside.returncode == 0:
        out = subprocess.run(["git", "archive", "--format=tar.gz", "HEAD"], capture_output=True)
        if out.returncode == 0:
            return out.stdout
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(Path(".").rglob("*")):
            if ".git" not in path.parts and path.is_file():
                tar.add(path, arcname=str(path))
    return buf.getvalue()


def _create_from_manifest(
    c: Any, body: dict[str, Any], remote: str, no_remote: bool, http_git: bool
) -> None:
    """apps:create --manifest: an app set up from app.json and this directory's code."""
    import time

    import httpx

    if not os.path.exists("app.json"):
        raise CLIError("No app.json in this directory.")
    blob = c.post("/sources")["source_blob"]
    put = httpx.put(blob["put_url"], content=_source_tarball(), timeout=300)
    if put.status_code >= 400:
        raise CLIError(f"Uploading the source failed (HTTP {put.status_code}).")
    setup = c.post("/app-setups", {"app": body, "source_blob": {"url": blob["get_url"]}})
    action(f"Creating ⬢ {setup['app']['name']} from app.json")
    while setup["status"] == "pending":
        time.sleep(1)
        setup = c.get(f"/app-setups/{setup['id']}")
    if setup["status"] != "succeeded":
        done("failed")
        details = "; ".join(setup.get("manifest_errors") or [])
        raise CLIError(
            (setup.get("failure_message") or "The app setup failed.")
            + (f" {details}" if details else "")
        )
    click.echo("done")
    app = c.get(f"/apps/{setup['app']['id']}")
    if setup.get("postdeploy"):
        click.echo(setup["postdeploy"].get("output", ""))
    git_url = app["git_url"]
    if not no_remote:
        git_url = add_remote(c, remote, app["name"], git_url, http_git) or git_url
    click.echo(f"{app['web_url']} | {git_url}")


@cli.command("apps:info")
@app_option
@click.option("-j", "--json", "as_json", is_flag=True, help="output in json format")
@click.option("-s", "--shell", is_flag=True, help="output more shell friendly key/value pairs")
def apps_info(app: str, as_json: bool, shell: bool) -> None:
    """Show detailed app information."""
    c = client()
    info = c.get(f"/apps/{_q(app)}")
    collaborators = c.get_all(f"/apps/{_q(app)}/collaborators")
    try:
        dynos = c.get_all(f"/apps/{_q(app)}/dynos")
    except CLIError:
        dynos = []
    if as_json:
        print_json({"app": info, "collaborators": collaborators, "dynos": dynos})
        return
    pairs = [
        (
            "Collaborators",
            ", ".join(x["user"]["email"] for x in collaborators if x.get("role") != "owner")
            or None,
        ),
        ("Dynos", ", ".join(f"{t}: {n}" for t, n in _dyno_counts(dynos).items()) or None),
        ("Git URL", info["git_url"]),
        ("Maintenance", "on" if info["maintenance"] else None),
        ("Owner", info["owner"]["email"]),
        ("Region", info["region"]["name"]),
        ("Repo Size", _size(info.get("repo_size"))),
        ("Slug Size", _size(info.get("slug_size"))),
        ("Space", (info.get("space") or {}).get("name")),
        ("Stack", info["stack"]["name"]),
        ("Team", (info.get("team") or {}).get("name")),
        ("Web URL", info["web_url"]),
    ]
    pairs = [(k, v) for k, v in pairs if v]
    if shell:
        for k, v in pairs:
            click.echo(f"{k.lower().replace(' ', '_')}={v}")
        return
    styled_header(info["name"])
    key_values(pairs)


def _dyno_counts(dynos: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dynos:
        out[d["type"]] = out.get(d["type"], 0) + 1
    return out


def _size(n: int | None) -> str | None:
    if not n:
        return None
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} TB"


@cli.command("apps:rename")
@click.argument("newname")
@app_option
def apps_rename(app: str, newname: str) -> None:
    """Rename an app."""
    action(f"Renaming ⬢ {app} to ⬢ {newname}")
    info = client().patch(f"/apps/{_q(app)}", {"name": newname})
    done()
    click.echo(f"{info['web_url']} | {info['git_url']}")


@cli.command("apps:migrate")
@click.argument("positional", required=False)
@click.option("-a", "--app", "app_opt", help="the Cedar app to move")
@click.option("-s", "--space", required=True, help="the Fir space it moves to")
@click.option("--name", help="the Fir app's name (default: <app>-fir)")
def apps_migrate(positional: str | None, app_opt: str | None, space: str, name: str | None) -> None:
    """Move a Cedar app to Fir: a Fir app in the space with its config, add-ons, features
    and formation, built from its source; its domains switch once the Fir app serves."""
    app = resolve_app(positional or app_opt)
    action(f"Migrating ⬢ {app} to the Fir space ⬡ {space}")
    body = {"space": space, **({"name": name} if name else {})}
    out = client().request("POST", f"/apps/{_q(app)}/actions/migrate", body, timeout=900.0)
    done(out["fir_app"]["name"])
    click.echo(f"=== ⬢ {out['fir_app']['name']} (Fir, from ⬢ {app})")
    for label, key in (
        ("Config vars", "config_vars"),
        ("Add-ons", "attachments"),
        ("Features", "features"),
        ("Domains", "domains"),
    ):
        click.echo(f"{label + ':':13} {', '.join(out[key]) or '(none)'}")
    click.echo(f"⬢ {app} keeps running on Cedar; remove it with spruce apps:destroy {app}.")


@cli.command("apps:destroy")
@click.argument("positional", required=False)
@click.option("-a", "--app", "app_opt", help="app to run command against")
@click.option("-c", "--confirm", help="the app name, to confirm without a prompt")
def apps_destroy(positional: str | None, app_opt: str | None, confirm: str | None) -> None:
    """Permanently destroy an app."""
    app = resolve_app(positional or app_opt)
    if confirm != app:
        if confirm is not None:
            raise CLIError(f"Confirmation {confirm} did not match {app}. Aborted.")
        if not sys.stdin.isatty():
            raise CLIError(f"This command requires confirmation. Re-run with --confirm {app}.")
        click.echo(f" ▸    WARNING: This will delete ⬢ {app} including all add-ons.")
        answer = click.prompt(
            f" ▸    To proceed, type {app} or re-run this command with --confirm {app}",
            default="",
            show_default=False,
        )
        if answer != app:
            raise CLIError(f"Confirmation did not match {app}. Aborted.")
    action(f"Destroying ⬢ {app} (including all add-ons)")
    client().delete(f"/apps/{_q(app)}")
    done()


# -- config ------------------------------------------------------------------------
def _shell_quote(v: str) -> str:

    return shlex.quote(v)


@cli.command("config")
@app_option
@click.option("-j", "--json", "as_json", is_flag=True, help="output config vars in json format")
@click.option("-s", "--shell", is_flag=True, help="output config vars in shell format")
def config_list(app: str, as_json: bool, shell: bool) -> None:
    """Display the config vars for an app."""
    config = client().get(f"/apps/{_q(app)}/config-vars")
    if as_json:
        print_json(config)
    elif shell:
        for k, v in config.items():
            click.echo(f"{k}={_shell_quote(v)}")
    else:
        styled_header(f"{app} Config Vars")
        key_values(sorted(config.items()))


@cli.command("config:get")
@click.argument("keys", nargs=-1, required=True)
@app_option
@click.option("-j", "--json", "as_json", is_flag=True, help="output in json format")
@click.option("-s", "--shell", is_flag=True, help="output config vars in shell format")
def config_get(app: str, keys: tuple[str, ...], as_json: bool, shell: bool) -> None:
    """Display a single config value for an app.

    As in Heroku's CLI, a var that is not set prints an empty line (`null` with --json) and
    the exit status stays 0, so `$(spruce config:get VAR)` is simply empty.
    """
    config = client().get(f"/apps/{_q(app)}/config-vars")
    if as_json:
        results = [{"key": k, "value": config.get(k)} for k in keys]
        print_json(results[0] if len(results) == 1 else results)
        return
    for k in keys:
        v = config.get(k, "")
        click.echo(f"{k}={_shell_quote(v)}" if shell else v)


@cli.command("config:set")
@click.argument("pairs", nargs=-1, required=True)
@app_option
def config_set(app: str, pairs: tuple[str, ...]) -> None:
    """Set one or more config vars (KEY=VALUE ...)."""
    body: dict[str, str] = {}
    for p in pairs:
        if "=" not in p:
            raise CLIError(f"{p} is invalid. Must be in the format FOO=bar.")
        k, _, v = p.partition("=")
        body[k] = v
    c = client()
    action(f"Setting {', '.join(body)} and restarting ⬢ {app}")
    config = c.patch(f"/apps/{_q(app)}/config-vars", body)
    releases = c.request(
        "GET", f"/apps/{_q(app)}/releases", headers={"Range": "version ..; max=1, order=desc"}
    )
    done(f"done, v{releases[0]['version']}" if releases else "done")
    key_values([(k, config.get(k)) for k in body])


@cli.command("config:unset")
@click.argument("keys", nargs=-1, required=True)
@app_option
def config_unset(app: str, keys: tuple[str, ...]) -> None:
    """Unset one or more config vars."""
    c = client()
    action(f"Unsetting {', '.join(keys)} and restarting ⬢ {app}")
    c.patch(f"/apps/{_q(app)}/config-vars", {k: None for k in keys})
    releases = c.request(
        "GET", f"/apps/{_q(app)}/releases", headers={"Range": "version ..; max=1, order=desc"}
    )
    done(f"done, v{releases[0]['version']}" if releases else "done")


# -- releases ---------------------------------------------------------------------
@cli.command("releases")
@app_option
@click.option("-n", "--num", default=15, show_default=True, help="number of releases to show")
@click.option("--json", "as_json", is_flag=True, help="output releases in json format")
def releases_list(app: str, num: int, as_json: bool) -> None:
    """Display the releases for an app."""
    rels = client().request(
        "GET", f"/apps/{_q(app)}/releases", headers={"Range": f"version ..; max={num}, order=desc"}
    )
    if as_json:
        print_json(rels)
        return
    styled_header(
        f"{app} Releases - Current: v{next((r['version'] for r in rels if r['current']), '?')}"
    )
    for r in rels:
        status = "" if r["status"] == "succeeded" else f" {r['status']}"
        click.echo(
            f"v{r['version']}  {r['description']}{status}  {r['user']['email']}  {r['created_at']}"
        )


def _release_id(c: Any, app: str, release: str | None) -> dict[str, Any]:
    if release:
        return c.get(f"/apps/{_q(app)}/releases/{_q(release.lstrip('vV'))}")  # type: ignore[no-any-return]
    rels = c.request(
        "GET", f"/apps/{_q(app)}/releases", headers={"Range": "version ..; max=1, order=desc"}
    )
    if not rels:
        raise CLIError(f"No releases found for {app}.")
    return rels[0]  # type: ignore[no-any-return]


@cli.command("releases:info")
@click.argument("release", required=False)
@app_option
@click.option("--json", "as_json", is_flag=True)
@click.option("-s", "--shell", is_flag=True, help="output in shell format")
def releases_info(app: str, release: str | None, as_json: bool, shell: bool) -> None:
    """View detailed information for a release."""
    c = client()
    r = _release_id(c, app, release)
    config = c.get(f"/apps/{_q(app)}/releases/{r['id']}/config-vars")
    if as_json:
        print_json(r)
        return
    styled_header(f"Release v{r['version']}")
    key_values(
        [
            ("Add-ons", ", ".join(r["addon_plan_names"]) or None),
            ("By", r["user"]["email"]),
            ("Change", r["description"]),
            ("Status", r["status"]),
            ("When", r["created_at"]),
        ]
    )
    click.echo()
    styled_header(f"v{r['version']} Config vars")
    if shell:
        for k, v in config.items():
            click.echo(f"{k}={_shell_quote(v)}")
    else:
        key_values(sorted(config.items()))


def _rollback(app: str, release: str | None) -> None:
    c = client()
    if release:
        target = _release_id(c, app, release)
    else:
        rels = c.request(
            "GET", f"/apps/{_q(app)}/releases", headers={"Range": "version ..; max=2, order=desc"}
        )
        if len(rels) < 2:
            raise CLIError(f"No earlier release of {app} to roll back to.")
        target = rels[1]
    action(f"Rolling back ⬢ {app} to v{target['version']}")
    new = c.post(f"/apps/{_q(app)}/releases", {"release": target["id"]})
    done(f"done, v{new['version']}")
    click.echo(" ▸    Rollback affects code and config vars; it doesn't add or remove addons.")


@cli.command("releases:output")
@click.argument("release", required=False)
@app_option
def releases_output(app: str, release: str | None) -> None:
    """View the release command output of a release."""
    import httpx

    r = _release_id(client(), app, release)
    url = r.get("output_stream_url")
    if not url:
        raise CLIError(f"Release v{r['version']} has no release command output.")
    with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=None)) as resp:
        for chunk in resp.iter_text():
            click.echo(chunk, nl=False)


@cli.command("rollback")
@click.argument("release", required=False)
@app_option
def rollback(app: str, release: str | None) -> None:
    """Roll back to a previous release (the one before the current by default)."""
    _rollback(app, release)


@cli.command("releases:rollback")
@click.argument("release", required=False)
@app_option
def releases_rollback(app: str, release: str | None) -> None:
    """Roll back to a previous release."""
    _rollback(app, release)
