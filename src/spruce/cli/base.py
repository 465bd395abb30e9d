"""The `spruce` command group, app inference and error handling shared by commands."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from .client import Client, CLIError

_REMOTE_NAMES = ("spruce", "heroku")
_APP_IN_URL = re.compile(r"/([a-z][a-z0-9-]{1,28}[a-z0-9])\.git/?$")


class SpruceGroup(click.Group):
    """Heroku-style verbs: `apps:create`; a bare topic (`apps`) runs its index command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CLIError as e:
            click.echo(f" ▸    {e.message}", err=True)
            ctx.exit(e.exit_code)


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
