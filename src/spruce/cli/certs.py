"""certs, certs:info, certs:add, certs:remove and certs:auto:* (Automated Certificate
Management), printing what Heroku's CLI prints, with `spruce` in the commands it suggests.

Progress lines ("Enabling ...... done") go to stderr, headers and tables to stdout, as
Heroku's CLI does. `--wait` polls faster than Heroku's (15 s) at first: the API is ours.
"""

from __future__ import annotations

import calendar
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from .base import app_option, cli, client
from .client import Client, CLIError
from .output import key_values, print_json, styled_header, table

DOCS = "https://devcenter.heroku.com/articles/automated-certificate-management#failure-reasons"
UUID_LIKE = 36


def _q(s: str) -> str:
    return quote(s, safe="")


def _time(value: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def format_date(value: str | dt.datetime) -> str:
    """Heroku's certificate dates: `2026-01-31 12:00 UTC`."""
    when = _time(value) if isinstance(value, str) else value
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def month_before(when: dt.datetime) -> dt.datetime:
    """One calendar month earlier, overflowing as JavaScript's setMonth does (Mar 31 -> Mar 3)."""
    year, month = (when.year, when.month - 1) if when.month > 1 else (when.year - 1, 12)
    days = calendar.monthrange(year, month)[1]
    base = when.replace(year=year, month=month, day=min(when.day, days))
    return base + dt.timedelta(days=max(when.day - days, 0))


def distance(then: dt.datetime, now: dt.datetime) -> str:
    """date-fns' formatDistanceToNow (English, no suffix): `less than a minute`, `5 minutes`."""
    minutes = round(abs((now - then).total_seconds()) / 60)

    def n(count: int, one: str, many: str) -> str:
        return one if count == 1 else many.format(count)

    if minutes < 2:
        return "less than a minute" if minutes == 0 else "1 minute"
    if minutes < 45:
        return f"{minutes} minutes"
    if minutes < 90:
        return "about 1 hour"
    if minutes < 1440:
        return n(round(minutes / 60), "about 1 hour", "about {} hours")
    if minutes < 2520:
        return "1 day"
    if minutes < 43200:
        return n(round(minutes / 1440), "1 day", "{} days")
    if minutes < 86400:
        return n(round(minutes / 43200), "about 1 month", "about {} months")
    months = int(minutes // 43200)
    if months < 12:
        return n(round(minutes / 43200), "1 month", "{} months")
    years, rest = divmod(months, 12)
    if rest < 3:
        return n(years, "about 1 year", "about {} years")
    if rest < 9:
        return n(years, "over 1 year", "over {} years")
    return n(years + 1, "almost 1 year", "almost {} years")


def status_label(value: str | None) -> str:
    """How Heroku's CLI shows an acm_status."""
    if not value:
        return "Waiting"
    special = {"ok": "OK", "failed": "Failed", "verified": "In Progress"}
    if value in special:
        return special[value]
    if value == "dns-verified":
        return "DNS Verified"
    return " ".join(w[:1].upper() + w[1:] for w in value.split("-"))


def certificate_details(
    endpoint: dict[str, Any],
    domains: list[str] | None = None,
    message: str = "Certificate details:",
) -> None:
    cert = endpoint["ssl_cert"]
    renews = month_before(_time(cert["expires_at"]))
    if endpoint.get("app") and cert.get("acm") and renews > dt.datetime.now(dt.UTC):
        click.echo(f"Renewal scheduled for {format_date(renews)}.\n")
    click.echo(message)
    names = list(cert.get("cert_domains") or [])
    pairs: list[tuple[str, Any]] = []
    if names:
        pairs.append(("Common Name(s)", names[0]))
    pairs += [
        ("Expires At", format_date(cert["expires_at"])),
        ("Issuer", cert["issuer"]),
        ("Starts At", format_date(cert["starts_at"])),
        ("Subject", cert["subject"]),
    ]
    shown = [d for d in domains or [] if len(d) != UUID_LIKE]
    if shown:
        pairs.append(("Domain(s)", shown[0]))
    width = max(len(k) for k, _ in pairs) + 2
    for key, value in pairs:
        click.echo(f"{key}:".ljust(width) + str(value))
        extra = names[1:] if key == "Common Name(s)" else shown[1:] if key == "Domain(s)" else []
        for more in extra:
            click.echo(" " * width + more)
    if cert.get("ca_signed?"):
        click.echo("SSL certificate is verified by a root authority.")
    elif cert.get("issuer") == cert.get("subject"):
        click.echo("SSL certificate is self signed.")
    else:
        click.echo("SSL certificate is not trusted.")


def _progress(text: str) -> None:
    click.echo(f"{text}... ", nl=False, err=True)
    sys.stderr.flush()


def _done(text: str = "done") -> None:
    click.echo(text, err=True)


# -- certs -----------------------------------------------------------------------------------
@cli.command("certs")
@app_option
@click.option("--json", "as_json", is_flag=True)
def certs(app: str, as_json: bool) -> None:
    """List SSL certificates for an app."""
    rows = client().get_all(f"/apps/{_q(app)}/sni-endpoints")
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"⬢ {app} has no SSL certificates.\nUse spruce certs:add CRT KEY to add one.")
        return
    rows = sorted(rows, key=lambda r: r["name"])
    headers = ["Name"]
    if any(r.get("display_name") for r in rows):
        headers.append("Display Name")
    headers += ["Common Name(s)", "Expires", "Trusted", "Type"]
    with_domains = any(not r["ssl_cert"].get("acm") for r in rows)
    if with_domains:
        headers.append("Domains")
    out = []
    for r in rows:
        c = r["ssl_cert"]
        row = [r["name"]]
        if "Display Name" in headers:
            row.append(r.get("display_name") or "")
        row += [
            ", ".join(c["cert_domains"]),
            format_date(c["expires_at"]),
            "True" if c.get("ca_signed?") else "False",
            "ACM" if c.get("acm") else "SNI",
        ]
        if with_domains:
            row.append("" if c.get("acm") else str(len(r.get("domains") or [])))
        out.append(row)
    table(out, headers)


def _endpoint(c: Client, app: str, name: str | None, endpoint: str | None) -> dict[str, Any]:
    """The SNI endpoint certs:info shows, chosen as Heroku's CLI chooses it."""
    if name and endpoint:
        raise CLIError("Specified both --name and --endpoint, please use just one")
    rows = c.get_all(f"/apps/{_q(app)}/sni-endpoints")
    if not rows:
        raise CLIError(f"{app} has no SSL certificates")
    if endpoint:
        domains = [
            c.get(f"/apps/{_q(app)}/domains/{_q(d)}") for r in rows for d in r.get("domains", [])
        ]
        rows = [
            r
            for r in rows
            if any(
                d["hostname"] == endpoint and (d.get("sni_endpoint") or {}).get("name") == r["name"]
                for d in domains
            )
        ]
        if len(rows) > 1:
            raise CLIError("Must pass --name when more than one endpoint matches --endpoint")
    if name:
        rows = [r for r in rows if r["name"] == name]
    if len(rows) > 1:
        raise CLIError("Must pass --name when more than one endpoint")
    if not rows:
        raise CLIError("Record not found.")
    return rows[0]


@cli.command("certs:info")
@app_option
@click.option("--name", help="name to check info on")
@click.option("--endpoint", help="endpoint to check info on")
@click.option("--show-domains", is_flag=True, help="show associated domains")
def certs_info(app: str, name: str | None, endpoint: str | None, show_domains: bool) -> None:
    """Show certificate information for an SSL certificate."""
    c = client()
    chosen = _endpoint(c, app, name, endpoint)
    _progress(f"Fetching SSL certificate {chosen['name']} info for ⬢ {app}")
    cert = c.get(f"/apps/{_q(app)}/sni-endpoints/{_q(chosen['name'])}")
    _done()
    hostnames: list[str] = []
    if show_domains:
        _progress(f"Fetching domains for {chosen['name']}")
        hostnames = [
            c.get(f"/apps/{_q(app)}/domains/{_q(d)}")["hostname"] for d in chosen["domains"]
        ]
        _done()
    certificate_details(cert, hostnames)


@cli.command("certs:add")
@click.argument("crt", type=click.Path(exists=True, dir_okay=False))
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
@app_option
def certs_add(app: str, crt: str, key: str) -> None:
    """Add an SSL certificate to an app."""
    click.echo(f"Adding SSL certificate to ⬢ {app}... ", nl=False)
    e = client().post(
        f"/apps/{_q(app)}/sni-endpoints",
        {"certificate_chain": Path(crt).read_text(), "private_key": Path(key).read_text()},
    )
    click.echo(f"done, {e['name']}")
    key_values(
        [
            ("Common Name(s)", ", ".join(e["ssl_cert"]["cert_domains"])),
            ("Expires At", e["ssl_cert"]["expires_at"]),
        ]
    )


@cli.command("certs:update")
@click.argument("crt", type=click.Path(exists=True, dir_okay=False))
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
@app_option
@click.option("--name", help="name of the SSL certificate (needed when the app has several)")
def certs_update(app: str, crt: str, key: str, name: str | None) -> None:
    """Update an SSL certificate on an app."""
    c = client()
    chosen = _endpoint(c, app, name, None)
    click.echo(f"Updating SSL certificate {chosen['name']} for ⬢ {app}... ", nl=False)
    e = c.patch(
        f"/apps/{_q(app)}/sni-endpoints/{_q(chosen['name'])}",
        {"certificate_chain": Path(crt).read_text(), "private_key": Path(key).read_text()},
    )
    click.echo("done")
    certificate_details(e)


@cli.command("certs:remove")
@app_option
@click.option("--name", required=True, help="name of the SSL certificate")
@click.option("--confirm", help="the app name, to confirm")
def certs_remove(app: str, name: str, confirm: str | None) -> None:
    """Remove an SSL certificate from an app."""
    if confirm != app:
        raise CLIError(f"This command requires confirmation. Re-run with --confirm {app}.")
    client().delete(f"/apps/{_q(app)}/sni-endpoints/{_q(name)}")
    click.echo(f"Removed certificate {name} from ⬢ {app}.")


# -- certs:auto (ACM) ------------------------------------------------------------------------
def _custom(domains: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in domains if d.get("kind") == "custom"]


def wait_for_certificates(c: Client, app: str, sleep: Any = time.sleep) -> None:
    """Poll until every custom domain is `cert issued` or `failed`; fail if any failed."""

    def settled(ds: list[dict[str, Any]]) -> bool:
        return all(d.get("acm_status") in ("cert issued", "failed") for d in _custom(ds))

    domains = c.get_all(f"/apps/{_q(app)}/domains")
    if settled(domains):
        return
    _progress("Waiting until the certificate is issued to all domains")
    attempts = 0
    while not settled(domains):
        sleep(min(2 * (1 + attempts // 10), 15))
        domains = c.get_all(f"/apps/{_q(app)}/domains")
        attempts += 1
    if any(d.get("acm_status") == "failed" for d in _custom(domains)):
        _done("!")
        raise CLIError("ACM not enabled for some domains")
    _done()


def _wait_for_cnames(c: Client, app: str, sleep: Any = time.sleep) -> list[dict[str, Any]]:
    domains = c.get_all(f"/apps/{_q(app)}/domains")
    if not any(not d.get("cname") for d in _custom(domains)):
        return domains
    _progress("Waiting for stable domains to be created")
    for _ in range(30):
        sleep(1)
        domains = c.get_all(f"/apps/{_q(app)}/domains")
        if not any(not d.get("cname") for d in _custom(domains)):
            _done()
            return domains
    _done("!")
    raise CLIError("Timed out while waiting for stable domains to be created")


def _record_type(hostname: str) -> str:
    if "*" in hostname:
        return "CNAME"
    # Without the public suffix list: a name of two labels is taken for an apex.
    return "CNAME" if hostname.count(".") >= 2 else "ALIAS/ANAME"


@cli.command("certs:auto")
@app_option
@click.option("--wait", is_flag=True, help="watch ACM status and display the status when complete")
def certs_auto(app: str, wait: bool) -> None:
    """Show ACM status for an app."""
    c = client()
    info = c.get(f"/apps/{_q(app)}")
    endpoints = c.get_all(f"/apps/{_q(app)}/sni-endpoints")
    if not info.get("acm"):
        styled_header(f"Automatic Certificate Management is disabled on ⬢ {app}")
        return
    styled_header(f"Automatic Certificate Management is enabled on ⬢ {app}")
    if len(endpoints) == 1 and endpoints[0]["ssl_cert"].get("acm"):
        certificate_details(endpoints[0])
        click.echo("")
    if wait:
        try:
            wait_for_certificates(c, app)
        except CLIError:
            pass  # the table below says which failed
    domains = _custom(c.get_all(f"/apps/{_q(app)}/domains"))
    message: str | None = None
    if not domains:
        message = "Add a custom domain to your app by running: spruce domains:add <yourdomain.com>"
    elif any(d.get("acm_status") == "failed" for d in domains):
        message = (
            "Some domains failed validation after multiple attempts, retry by running: "
            f"spruce certs:auto:refresh\n    See our documentation at {DOCS}"
        )
    elif any(d.get("acm_status") == "failing" for d in domains):
        message = (
            "Some domains are failing validation, please verify that your DNS matches: "
            f"spruce domains\n    See our documentation at {DOCS}"
        )
    if domains:
        now = dt.datetime.now(dt.UTC)
        reasons = any(d.get("acm_status_reason") for d in domains)
        headers = ["Domain", "Status", *(["Reason"] if reasons else []), "Last Updated"]
        rows = [
            [
                d["hostname"],
                status_label(d.get("acm_status")),
                *([d.get("acm_status_reason") or ""] if reasons else []),
                distance(_time(d["updated_at"]), now),
            ]
            for d in domains
        ]
        table(rows, headers)
        if message:
            click.echo("")
    if message:
        styled_header(message)


@cli.command("certs:auto:enable")
@app_option
@click.option("--wait", is_flag=True, help="watch ACM status and exit when complete")
def certs_auto_enable(app: str, wait: bool) -> None:
    """Enable ACM for an app."""
    c = client()
    _progress("Enabling Automatic Certificate Management")
    before = {d["hostname"]: d.get("cname") for d in c.get_all(f"/apps/{_q(app)}/domains")}
    c.post(f"/apps/{_q(app)}/acm", {})
    if wait:
        _done("starting.")
        try:
            wait_for_certificates(c, app)
        except CLIError:
            styled_header(
                "Error: The certificate could not be issued to all domains. "
                "See status with spruce certs:auto."
            )
            raise
    else:
        _done(
            "starting. See status with spruce certs:auto or wait until active with "
            "spruce certs:auto --wait"
        )
    domains = _wait_for_cnames(c, app)
    changed = [
        d
        for d in _custom(domains)
        if d["hostname"] in before and d.get("cname") != before[d["hostname"]]
    ]
    message = (
        "Your certificate will now be managed by Heroku. Check the status by running "
        "spruce certs:auto."
    )
    if not _custom(domains):
        styled_header(
            f"{message}  Add a custom domain to your app by running "
            "spruce domains:add <yourdomain.com>"
        )
    elif changed:
        styled_header(f"{message}  Update your application's DNS settings as follows")
        table(
            [[d["hostname"], _record_type(d["hostname"]), d.get("cname") or ""] for d in changed],
            ["Domain", "Record Type", "DNS Target"],
        )
    else:
        styled_header(message)


@cli.command("certs:auto:disable")
@app_option
@click.option("-c", "--confirm", help="the app name, to confirm without a prompt")
def certs_auto_disable(app: str, confirm: str | None) -> None:
    """Disable ACM for an app."""
    if confirm != app:
        if confirm is not None:
            raise CLIError(f"Confirmation {confirm} did not match {app}. Aborted.")
        if not sys.stdin.isatty():
            raise CLIError(f"This command requires confirmation. Re-run with --confirm {app}.")
        for line in (
            f"This command will disable Automatic Certificate Management from ⬢ {app}.",
            f"This will cause the certificate to be removed from ⬢ {app} causing SSL",
            "validation errors.  In order to avoid downtime, the recommended steps",
            "are preferred which will also disable Automatic Certificate Management.",
            "",
            "1) Request a new SSL certificate for your domains names from your certificate "
            "provider",
            "2) spruce certs:update CRT KEY",
        ):
            click.echo(f" ▸    {line}".rstrip(), err=True)
        answer = click.prompt(
            f" ▸    To proceed, type {app} or re-run this command with --confirm {app}",
            default="",
            show_default=False,
            err=True,
        )
        if answer != app:
            raise CLIError(f"Confirmation {answer} did not match {app}. Aborted.")
    _progress("Disabling Automatic Certificate Management")
    client().delete(f"/apps/{_q(app)}/acm")
    _done()


@cli.command("certs:auto:refresh")
@app_option
def certs_auto_refresh(app: str) -> None:
    """Refresh ACM for an app."""
    _progress("Refreshing Automatic Certificate Management")
    client().patch(f"/apps/{_q(app)}/acm", {"acm_refresh": True})
    _done()
