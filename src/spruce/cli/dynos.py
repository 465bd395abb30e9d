"""ps, ps:restart, ps:stop, ps:type, run, run:detached, run:inside."""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import click

from spruce.config import default_home

from .base import app_option, cli, client
from .client import CLIError
from .output import action, done, print_json, styled_header, warn

EXIT_RE = re.compile(rb"\xef\xbf\xbf heroku-command-exit-status: (-?\d+)\r?\n?")
FIRST_CHUNK = b"rendezvous\r\n"


def _q(s: str) -> str:
    return quote(s, safe="")


def _is_fir(c: Any, app: str) -> bool:
    info = c.get(f"/apps/{_q(app)}")
    gen = info.get("generation")
    return (gen.get("name") if isinstance(gen, dict) else gen) == "fir"


def _with_launcher(c: Any, app: str, command: tuple[str, ...], no_launcher: bool) -> str:
    """Heroku's CLI 11 prepends `launcher` when the app's stack is cnb (Fir), so the command
    sees the buildpacks' environment; --no-launcher runs it bare."""
    line = " ".join(command)
    if no_launcher:
        return line
    stack = c.get(f"/apps/{_q(app)}").get("stack") or {}
    return f"launcher {line}" if stack.get("name") == "cnb" else line


no_launcher_option = click.option(
    "--no-launcher", is_flag=True, help="do not prepend `launcher` on Fir apps"
)


@cli.command("ps")
@click.argument("types", nargs=-1)
@app_option
@click.option("--json", "as_json", is_flag=True, help="display as json")
def ps(app: str, types: tuple[str, ...], as_json: bool) -> None:
    """List dynos for an app."""
    c = client()
    dynos = c.get_all(f"/apps/{_q(app)}/dynos")
    if types:
        dynos = [d for d in dynos if d["type"] in types]
    if as_json:
        print_json(dynos)
        return
    if not dynos:
        click.echo(f"No dynos on ⬢ {app}")
        return
    one_offs = [d for d in dynos if d["type"] in ("run", "release")]
    for d in one_offs:
        styled_header("One-off processes")
        click.echo(f"{d['name']} ({d['size']}): {d['state']} {d['updated_at']}: {d['command']}")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for d in dynos:
        if d not in one_offs:
            by_type.setdefault(d["type"], []).append(d)
    for t, ds in sorted(by_type.items()):
        styled_header(f"{t} ({ds[0]['size']}): {ds[0]['command']} ({len(ds)})")
        for d in sorted(
            ds,
            key=lambda x: (
                int(x["name"].split(".")[-1]) if x["name"].split(".")[-1].isdigit() else 0
            ),
        ):
            click.echo(f"{d['name']}: {d['state']} {d['updated_at']}")
        click.echo()


def _target(
    c: Any,
    app: str,
    positional: str | None,
    dyno_flag: str | None,
    process_type: str | None,
    dyno_name: str | None,
    verb: str,
) -> tuple[str | None, str | None]:
    """Heroku CLI v10: --process-type/--dyno-name; positional and --dyno are deprecated
    (accepted on Cedar apps with a warning, refused on Fir apps)."""
    legacy = positional or dyno_flag
    if legacy:
        if _is_fir(c, app):
            raise CLIError(f"On Fir apps, name what to {verb} with --process-type or --dyno-name.")
        warn("DYNO is a deprecated argument. Use --process-type or --dyno-name instead.")
        return (None, legacy) if "." in legacy else (legacy, None)
    return process_type, dyno_name


@cli.command("ps:restart")
@click.argument("dyno", required=False)
@app_option
@click.option(
    "-d", "--dyno", "dyno_flag", hidden=True, help="deprecated: use --dyno-name or --process-type"
)
@click.option("-p", "--process-type", help="name of the process type to restart")
@click.option("--dyno-name", help="name of the dyno to restart")
def ps_restart(
    app: str,
    dyno: str | None,
    dyno_flag: str | None,
    process_type: str | None,
    dyno_name: str | None,
) -> None:
    """Restart an app's dynos (all of them, a process type, or one dyno)."""
    c = client()
    ptype, name = _target(c, app, dyno, dyno_flag, process_type, dyno_name, "restart")
    if name:
        action(f"Restarting dyno {name} on ⬢ {app}")
        c.delete(f"/apps/{_q(app)}/dynos/{_q(name)}")
    elif ptype:
        action(f"Restarting all {ptype} dynos on ⬢ {app}")
        c.delete(f"/apps/{_q(app)}/formations/{_q(ptype)}")
    else:
        action(f"Restarting all dynos on ⬢ {app}")
        c.delete(f"/apps/{_q(app)}/dynos")
    done()


@cli.command("ps:stop")
@click.argument("dyno", required=False)
@app_option
@click.option("-d", "--dyno", "dyno_flag", hidden=True)
@click.option("-p", "--process-type", help="name of the process type to stop")
@click.option("--dyno-name", help="name of the dyno to stop")
def ps_stop(
    app: str,
    dyno: str | None,
    dyno_flag: str | None,
    process_type: str | None,
    dyno_name: str | None,
) -> None:
    """Stop an app's dynos (a process type, or one dyno)."""
    c = client()
    ptype, name = _target(c, app, dyno, dyno_flag, process_type, dyno_name, "stop")
    if not ptype and not name:
        raise CLIError(
            "Please specify a process type or dyno name to stop (--process-type or --dyno-name)."
        )
    if name:
        action(f"Stopping dyno {name} on ⬢ {app}")
        c.post(f"/apps/{_q(app)}/dynos/{_q(name)}/actions/stop")
    else:
        assert ptype is not None
        action(f"Stopping {ptype} dynos on ⬢ {app}")
        c.post(f"/apps/{_q(app)}/formations/{_q(ptype)}/actions/stop")
    done()


def _resize(app: str, args: tuple[str, ...]) -> None:
    c = client()
    formation = c.get_all(f"/apps/{_q(app)}/formation")
    if args:
        updates = []
        for arg in args:
            if "=" not in arg:
                raise CLIError(f"Usage: TYPE=SIZE, e.g. web=standard-2x (got {arg!r}).")
            t, _, size = arg.partition("=")
            updates.append({"type": t, "size": size})
        action(f"Scaling dynos on ⬢ {app}")
        formation = c.patch(f"/apps/{_q(app)}/formation", {"updates": updates})
        done()
    rows = [(f["type"], f["size"], f["quantity"]) for f in formation]
    from .output import table

    table(rows, ["Type", "Size", "Qty"])


@cli.command("ps:type")
@click.argument("args", nargs=-1)
@app_option
def ps_type(app: str, args: tuple[str, ...]) -> None:
    """Manage dyno sizes (web=standard-2x worker=basic)."""
    _resize(app, args)


@cli.command("ps:resize")
@click.argument("args", nargs=-1)
@app_option
def ps_resize(app: str, args: tuple[str, ...]) -> None:
    """Manage dyno sizes (alias of ps:type)."""
    _resize(app, args)


# -- run ---------------------------------------------------------------------------------
def _ssl_context(c: Any) -> ssl.SSLContext:
    """Trust the system roots plus the platform's internal CA (from SPRUCE_CA_BUNDLE, the
    local home, or the API's /spruce/ca.pem)."""
    ctx = ssl.create_default_context()
    bundle = os.environ.get("SPRUCE_CA_BUNDLE")
    if bundle and Path(bundle).exists():
        ctx.load_verify_locations(cafile=bundle)
        return ctx
    try:
        resp = c._http.get("/spruce/ca.pem")
        if resp.status_code == 200:
            ctx.load_verify_locations(cadata=resp.text)
            return ctx
    except Exception:
        pass
    local = default_home() / "ca" / "ca.pem"
    if local.exists():
        ctx.load_verify_locations(cafile=str(local))
    return ctx


def attach(url: str, interactive: bool, ctx: ssl.SSLContext) -> int:
    """Meet a dyno at its rendezvous URL (TLS, secret line) and relay the terminal."""
    parsed = urlparse(url)
    try:
        raw = socket.create_connection((parsed.hostname, parsed.port or 5000), timeout=30)
        sock = ctx.wrap_socket(raw, server_hostname=parsed.hostname)
    except (OSError, ssl.SSLError) as e:
        raise CLIError(
            f"Could not attach to the dyno at {parsed.hostname}:{parsed.port}: {e}"
        ) from None
    sock.sendall(parsed.path.lstrip("/").encode() + b"\r\n")
    sock.settimeout(None)
    buf = b""
    first = True
    status = 0
    stdin_open = True
    stdin_fd = sys.stdin.fileno() if interactive else None
    out = sys.stdout.buffer
    while True:
        watch: list[Any] = [sock]
        if stdin_open and stdin_fd is not None:
            watch.append(stdin_fd)
        ready, _, _ = select.select(watch, [], [], 0 if sock.pending() else None)
        if sock in ready or sock.pending():
            data = sock.recv(65536)
            if not data:
                break
            if first:
                first = False
                if data.startswith(FIRST_CHUNK):
                    data = data[len(FIRST_CHUNK) :]
            buf += data
            m = EXIT_RE.search(buf)
            if m:
                out.write(buf[: m.start()])
                out.flush()
                status = int(m.group(1))
                break
            # keep a possible partial status marker for the next read
            keep = buf.rfind(b"\xef")
            if keep == -1 or len(buf) - keep > 40:
                out.write(buf)
                buf = b""
            else:
                out.write(buf[:keep])
                buf = buf[keep:]
            out.flush()
        if stdin_fd is not None and stdin_fd in ready:
            chunk = os.read(stdin_fd, 65536)
            if chunk:
                sock.sendall(chunk)
            else:
                stdin_open = False
    sock.close()
    return status


@cli.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@app_option
@click.option("-s", "--size", help="dyno size")
@click.option("-e", "--env", "env", help="environment variables to set (KEY=VAL;KEY2=VAL2)")
@click.option("--no-tty", is_flag=True, help="force the command to not run in a tty")
@click.option(
    "-x", "--exit-code", is_flag=True, help="passthrough the exit code of the remote command"
)
@no_launcher_option
def run(
    app: str,
    command: tuple[str, ...],
    size: str | None,
    env: str | None,
    no_tty: bool,
    exit_code: bool,
    no_launcher: bool,
) -> None:
    """Run a one-off process inside a dyno, attached to this terminal."""
    c = client()
    body: dict[str, Any] = {
        "attach": True,
        "command": _with_launcher(c, app, command, no_launcher),
        "force_no_tty": no_tty or not sys.stdin.isatty(),
        "env": {"TERM": os.environ.get("TERM", "xterm")},
    }
    body["env"].update(_parse_env(env))
    if size:
        body["size"] = size
    action(f"Running {' '.join(command)} on ⬢ {app}", err=True)
    dyno = c.post(f"/apps/{_q(app)}/dynos", body)
    done(f"up, {dyno['name']}")
    status = attach(dyno["attach_url"], interactive=True, ctx=_ssl_context(c))
    sys.stdout.flush()
    if status:
        sys.exit(status)


def _parse_env(raw: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (raw or "").split(";"):
        if part.strip():
            k, sep, v = part.partition("=")
            if not sep:
                raise CLIError(f"{part} is invalid. Use KEY=VALUE.")
            out[k.strip()] = v
    return out


@cli.command(
    "run:detached",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@app_option
@click.option("-s", "--size", help="dyno size")
@click.option("-e", "--env", "env", help="environment variables to set (KEY=VAL;KEY2=VAL2)")
@no_launcher_option
def run_detached(
    app: str, command: tuple[str, ...], size: str | None, env: str | None, no_launcher: bool
) -> None:
    """Run a detached one-off process; its output goes to the app's logs."""
    c = client()
    body: dict[str, Any] = {
        "attach": False,
        "command": _with_launcher(c, app, command, no_launcher),
        "env": _parse_env(env),
    }
    if size:
        body["size"] = size
    action(f"Running {' '.join(command)} on ⬢ {app}")
    dyno = c.post(f"/apps/{_q(app)}/dynos", body)
    done(f"done, {dyno['name']}")
    click.echo(f"Use spruce logs -a {app} --dyno-name {dyno['name']} to view the output.")


@cli.command(
    "run:inside",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("dyno_name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@app_option
@no_launcher_option
def run_inside(app: str, dyno_name: str, command: tuple[str, ...], no_launcher: bool) -> None:
    """Run a command inside an existing dyno."""
    c = client()
    action(f"Running {' '.join(command)} on ⬢ {app} ({dyno_name})", err=True)
    dyno = c.post(
        f"/apps/{_q(app)}/dynos/{_q(dyno_name)}/actions/run-inside",
        {"command": _with_launcher(c, app, command, no_launcher)},
    )
    done("up")
    status = attach(dyno["attach_url"], interactive=True, ctx=_ssl_context(c))
    if status:
        sys.exit(status)
