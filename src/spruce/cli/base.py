"""The `spruce` command group, app inference and error handling shared by commands."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import traceback
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
import httpx

from .client import Client, CLIError
from .output import error, interrupt_action

_REMOTE_NAMES = ("spruce", "heroku")
_APP_IN_URL = re.compile(r"/([a-z][a-z0-9-]{1,28}[a-z0-9])\.git/?$")

# The Heroku CLI's aliases (most of them hidden there too): name typed -> command run.
ALIASES = {
    "ai:models": "ai:models:list",
    "create": "apps:create",
    "info": "apps:info",
    "open": "apps:open",
    "rename": "apps:rename",
    "destroy": "apps:destroy",
    "apps:delete": "apps:destroy",
    "list": "apps",
    "apps:list": "apps",
    "apps:stacks": "stack",
    "apps:stacks:set": "stack:set",
    "restart": "ps:restart",
    "dyno:restart": "ps:restart",
    "scale": "ps:scale",
    "dyno:scale": "ps:scale",
    "stop": "ps:stop",
    "kill": "ps:stop",
    "ps:kill": "ps:stop",
    "dyno:stop": "ps:stop",
    "dyno:kill": "ps:stop",
    "resize": "ps:type",
    "dyno:resize": "ps:type",
    "dyno:type": "ps:type",
    "config:add": "config:set",
    "config:remove": "config:unset",
    "addons:add": "addons:create",
    "addons:remove": "addons:destroy",
    "auth:login": "login",
    "logout": "auth:logout",
    "whoami": "auth:whoami",
    "redis": "redis:info",
    "pg": "pg:info",
    "psql": "pg:psql",
}


class UnknownCommand(CLIError):
    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"\nDid you mean {close[0]}?" if close else ""
        super().__init__(
            f"{name} is not a spruce command.{hint}\n"
            "Run spruce help for a list of available commands."
        )


class SpruceGroup(click.Group):
    """Heroku-style verbs: `apps:create`; a bare topic (`apps`) runs its index command;
    Heroku's aliases (`create`, `info`, `restart`...) run the command they name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in ALIASES:
            found = super().get_command(ctx, ALIASES[cmd_name])
        return found

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            raise UnknownCommand(name, [*self.commands, *ALIASES])
        return super().resolve_command(ctx, args)


@click.group(cls=SpruceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spruce", prog_name="spruce")
def cli() -> None:
    """Spruce: a self-hosted Heroku. Commands follow the Heroku CLI's verbs."""


def app_from_git_remote(cwd: str | None = None) -> str | None:
    for remote in _REMOTE_NAMES:
        try:
            url = subprocess.run(
                ["git", "remote", "get-url", remote],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = _APP_IN_URL.search(url)
        if m:
            return m.group(1)
    return None


def resolve_app(app: str | None) -> str:
    app = (
        app or os.environ.get("SPRUCE_APP") or os.environ.get("HEROKU_APP") or app_from_git_remote()
    )
    if not app:
        raise CLIError(
            "No app specified. Use -a APP, or run this inside a git repository with a "
            "`spruce` or `heroku` remote."
        )
    return app


def app_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """-a/--app (and -r/--remote) on a command, resolved to an app name."""

    @click.option("-a", "--app", "app", help="app to run command against")
    @click.option("-r", "--remote", "remote", help="git remote of app to use", hidden=True)
    @wraps(f)
    def wrapper(*args: Any, app: str | None, remote: str | None, **kwargs: Any) -> Any:
        if not app and remote:
            try:
                url = subprocess.run(
                    ["git", "remote", "get-url", remote], capture_output=True, text=True
                ).stdout
            except OSError:
                url = ""
            m = _APP_IN_URL.search(url.strip())
            app = m.group(1) if m else None
        return f(*args, app=resolve_app(app), **kwargs)

    return wrapper


def client() -> Client:
    return Client()


def run(args: list[str] | None = None) -> int:
    """Run one command line; print any error in Heroku's style; return the exit status:
    2 for usage errors (a bad flag or argument), 1 for every other error."""
    try:
        rv = cli.main(args=args, prog_name="spruce", standalone_mode=False)
    except CLIError as e:
        error(e.message)
        return e.exit_code
    except click.UsageError as e:
        error(e.format_message())
        path = e.ctx.command_path if e.ctx is not None else "spruce"
        click.echo(f" ▸    See more help with: {path} --help", err=True)
        return 2
    except click.ClickException as e:
        error(e.format_message())
        return e.exit_code
    except click.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click has ended the line already
            interrupt_action()
            return 130
        error("Aborted.")
        return 1
    except SystemExit as e:  # a command passing on a remote exit status (run, psql)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except httpx.HTTPError as e:
        error(f"The request failed: {type(e).__name__}: {e}")
        return 1
    except Exception as e:  # a bug of ours: one sentence, the traceback on request
        if os.environ.get("SPRUCE_DEBUG"):
            interrupt_action()
            traceback.print_exc()
        else:
            error(
                f"Unexpected error: {type(e).__name__}: {e}\n"
                "Run it again with SPRUCE_DEBUG=1 to see the traceback."
            )
        return 1
    return rv if isinstance(rv, int) else 0
