"""ps:exec: an SSH session into a running Cedar dyno through Heroku Exec (asyncssh client).

It asks the exec manager on the API (`PUT /api/v2/{dyno}?app=APP`, the bearer key as for
any call) to let a fresh key in, then connects to the gateway the answer names, checking
its host key, and runs the command (or a shell) with this terminal when there is one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import termios
import tty
from typing import Any
from urllib.parse import quote

import asyncssh
import click

from .base import app_option, cli, client
from .client import CLIError
from .output import action, done, styled_header

EXEC_PORT = 80


def _q(s: str) -> str:
    return quote(s, safe="")


async def _session(answer: dict[str, Any], key: asyncssh.SSHKey, command: str | None) -> int:
    host_key = asyncssh.import_public_key(str(answer["proxy_public_key"]))
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    size = shutil.get_terminal_size()
    async with asyncssh.connect(
        str(answer["tunnel_host"]),
        EXEC_PORT,
        username=str(answer["client_user"]),
        client_keys=[key],
        known_hosts=([host_key], [], []),
        agent_path=None,
        encoding=None,
    ) as conn:
        saved = termios.tcgetattr(sys.stdin.fileno()) if interactive else None
        if saved is not None:
            tty.setraw(sys.stdin.fileno())
        try:
            result = await conn.run(
                command,
                stdin=sys.stdin.buffer,
                stdout=sys.stdout.buffer,
                stderr=sys.stderr.buffer,
                term_type=os.environ.get("TERM", "xterm") if interactive else None,
                term_size=(size.columns, size.lines) if interactive else None,
            )
        finally:
            if saved is not None:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    status = result.exit_status
    return status if isinstance(status, int) and status >= 0 else 1


@cli.command(
    "ps:exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@app_option
@click.option("-d", "--dyno", "dyno_name", default="web.1", help="the dyno to connect to")
@click.option("--status", is_flag=True, help="list the dynos Heroku Exec reaches")
def ps_exec(app: str, command: tuple[str, ...], dyno_name: str, status: bool) -> None:
    """Open an SSH session to a running dyno (Heroku Exec), or run COMMAND there."""
    c = client()
    feature = c.get(f"/apps/{_q(app)}/features/runtime-heroku-exec")
    if not feature.get("enabled"):
        raise CLIError(
            f"Heroku Exec is not enabled for {app}. Run `spruce features:enable "
            f"runtime-heroku-exec -a {app}`, then `spruce ps:restart -a {app}`."
        )
    if status:
        styled_header(f"Heroku Exec {app}")
        for r in c.get(f"/api/v2?app={_q(app)}"):
            click.echo(f"{r['dyno_name']}  running")
        return
    key = asyncssh.generate_private_key("ssh-ed25519")
    action("Establishing credentials", err=True)
    answer = c.request(
        "PUT",
        f"/api/v2/{_q(dyno_name)}?app={_q(app)}",
        {"client_key": key.export_public_key("openssh").decode().strip()},
    )
    done("done")
    action(f"Connecting to {dyno_name} on ⬢ {app}", err=True)
    done("up")
    try:
        code = asyncio.run(_session(answer, key, " ".join(command) or None))
    except (OSError, asyncssh.Error) as e:
        raise CLIError(f"Could not connect to {dyno_name}: {e}.") from None
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    if code:
        sys.exit(code)
