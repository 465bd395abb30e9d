"""buildpacks:*, domains:*, stack (certs:* are in certs.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from .base import app_option, cli, client
from .client import CLIError
from .output import action, done, key_values, print_json, styled_header, table


def _q(s: str) -> str:
    return quote(s, safe="")


def _buildpacks(app: str) -> list[str]:
    return [b["buildpack"]["url"] for b in client().get(f"/apps/{_q(app)}/buildpack-installations")]


def _put_buildpacks(app: str, urls: list[str]) -> list[str]:
    rows = client().request(
        "PUT",
        f"/apps/{_q(app)}/buildpack-installations",
        {"updates": [{"buildpack": u} for u in urls]},
    )
    return [b["buildpack"]["url"] for b in rows]


def _show(app: str, urls: list[str]) -> None:
    if not urls:
        click.echo(f"⬢ {app} has no Buildpacks.")
        return
    styled_header(f"⬢ {app} Buildpack{'s' if len(urls) > 1 else ''}")
    if len(urls) == 1:
        click.echo(urls[0])
    else:
        for i, u in enumerate(urls, 1):
            click.echo(f"{i}. {u}")


def _fir_buildpacks(app: str) -> list[str] | None:
    """Heroku's CLI flow on Fir: the latest release's OCI image lists the CNBs (None: Cedar)."""
    c = client()
    info = c.get(f"/apps/{_q(app)}")
    gen = info.get("generation")
    if (gen.get("name") if isinstance(gen, dict) else gen) != "fir":
        return None
    releases = c.request(
        "GET",
        f"/apps/{_q(app)}/releases",
        headers={"Range": "version ..; max=10, order=desc"},
    )
    if not releases or not releases[0].get("oci_image"):
        return []
    images = c.get(f"/apps/{_q(app)}/oci-images/{_q(releases[0]['oci_image']['id'])}")
    packs = images[0].get("buildpacks") or [] if images else []
    return [str(b["id"]).removeprefix("urn:buildpack:") for b in packs]


@cli.command("buildpacks")
@app_option
def buildpacks(app: str) -> None:
    """Display the buildpacks for an app."""
    fir = _fir_buildpacks(app)
    if fir is None:
        _show(app, _buildpacks(app))
        return
    if not fir:
        click.echo(f"⬢ {app} has no Buildpacks.")
        return
    many = len(fir) > 1
    styled_header(
        f"⬢ {app} Cloud Native Buildpack{'s' if many else ''} (from the latest release's OCI image)"
    )
    for i, bp in enumerate(fir, 1):
        click.echo(f"{i}. {bp}" if many else bp)


@cli.command("buildpacks:set")
@click.argument("buildpack")
@app_option
@click.option("-i", "--index", type=int, help="the 1-based index of the URL in the list of URLs")
def buildpacks_set(app: str, buildpack: str, index: int | None) -> None:
    """Set new app buildpack, overwriting into list of buildpacks if necessary."""
    urls = _buildpacks(app)
    if index is None or not urls:
        urls = [buildpack]
    elif 1 <= index <= len(urls):
        urls[index - 1] = buildpack
    else:
        raise CLIError(f"Invalid index {index}: there are {len(urls)} buildpacks.")
    urls = _put_buildpacks(app, urls)
    click.echo(f"Buildpack set. Next release on ⬢ {app} will use {buildpack}.")
    click.echo("Run git push spruce main to create a new release using this buildpack.")


@cli.command("buildpacks:add")
@click.argument("buildpack")
@app_option
@click.option("-i", "--index", type=int, help="the 1-based index of the URL in the list of URLs")
def buildpacks_add(app: str, buildpack: str, index: int | None) -> None:
    """Add new app buildpack, inserting into list of buildpacks if necessary."""
    urls = _buildpacks(app)
    if buildpack in urls:
        raise CLIError(f"The buildpack {buildpack} is already set on your app.")
    pos = len(urls) if index is None else max(0, min(index - 1, len(urls)))
    urls.insert(pos, buildpack)
    _show(app, _put_buildpacks(app, urls))


@cli.command("buildpacks:remove")
@click.argument("buildpack", required=False)
@app_option
@click.option("-i", "--index", type=int, help="the 1-based index of the URL to remove")
def buildpacks_remove(app: str, buildpack: str | None, index: int | None) -> None:
    """Remove a buildpack set on the app."""
    urls = _buildpacks(app)
    if index is not None:
        if not 1 <= index <= len(urls):
            raise CLIError(f"Invalid index {index}.")
        urls.pop(index - 1)
    elif buildpack in urls:
        urls.remove(buildpack)
    else:
        raise CLIError(f"Buildpack {buildpack} not found.")
    _show(app, _put_buildpacks(app, urls))


@cli.command("buildpacks:clear")
@app_option
def buildpacks_clear(app: str) -> None:
    """Clear all buildpacks set on the app (auto-detection is used again)."""
    _put_buildpacks(app, [])
    click.echo(f"Buildpacks cleared. Next release on ⬢ {app} will detect buildpacks normally.")


@cli.command("stack")
@app_option
def stack(app: str) -> None:
    """Show the list of available stacks."""
    c = client()
    info = c.get(f"/apps/{_q(app)}")
    styled_header(f"⬢ {app} Available Stacks")
    for s in c.get_all("/stacks"):
        mark = "*" if s["name"] == info["stack"]["name"] else " "
        click.echo(f"{mark} {s['name']}")


@cli.command("stack:set")
@click.argument("name")
@app_option
def stack_set(app: str, name: str) -> None:
    """Set the stack of an app (used by the next build)."""
    client().patch(f"/apps/{_q(app)}", {"build_stack": name})
    click.echo(f"Set stack of ⬢ {app} to {name}.")
    click.echo(f"You will need to redeploy ⬢ {app} for the change to take effect.")


# -- domains --------------------------------------------------------------------------------
@cli.command("domains")
@app_option
@click.option("--json", "as_json", is_flag=True)
def domains(app: str, as_json: bool) -> None:
    """List domains for an app."""
    rows = client().get_all(f"/apps/{_q(app)}/domains")
    if as_json:
        print_json(rows)
        return
    default = [d for d in rows if d["kind"] == "heroku"]
    custom = [d for d in rows if d["kind"] == "custom"]
    styled_header(f"{app} Spruce Domain")
    for d in default:
        click.echo(d["hostname"])
    if custom:
        click.echo()
        styled_header(f"{app} Custom Domains")
        table(
            [
                (d["hostname"], "CNAME", d["cname"], (d["sni_endpoint"] or {}).get("name", ""))
                for d in custom
            ],
            ["Domain Name", "DNS Record Type", "DNS Target", "SNI Endpoint"],
        )


@cli.command("domains:add")
@click.argument("hostname")
@app_option
@click.option("--cert", help="the name of the SSL cert you want to use for this domain")
@click.option("--json", "as_json", is_flag=True)
def domains_add(app: str, hostname: str, cert: str | None, as_json: bool) -> None:
    """Add a domain to an app."""
    body: dict[str, Any] = {"hostname": hostname, "sni_endpoint": cert}
    action(f"Adding {hostname} to ⬢ {app}")
    d = client().post(f"/apps/{_q(app)}/domains", body)
    done()
    if as_json:
        print_json(d)
        return
    click.echo(f" ▸    Configure your app's DNS provider to point to the DNS Target {d['cname']}.")


@cli.command("domains:info")
@click.argument("hostname")
@app_option
def domains_info(app: str, hostname: str) -> None:
    """Show detailed information for a domain on an app."""
    d = client().get(f"/apps/{_q(app)}/domains/{_q(hostname)}")
    styled_header(d["hostname"])
    key_values(
        [
            ("Domain Name", d["hostname"]),
            ("DNS Record Type", "CNAME" if d["cname"] else None),
            ("DNS Target", d["cname"]),
            ("Kind", d["kind"]),
            ("Status", d["status"]),
            ("SNI Endpoint", (d["sni_endpoint"] or {}).get("name")),
        ]
    )


@cli.command("domains:remove")
@click.argument("hostname")
@app_option
def domains_remove(app: str, hostname: str) -> None:
    """Remove a domain from an app."""
    action(f"Removing {hostname} from ⬢ {app}")
    client().delete(f"/apps/{_q(app)}/domains/{_q(hostname)}")
    done()
