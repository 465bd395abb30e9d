"""Run `spruce ...` in-process as the real entry point does: every command registered, errors
printed in Heroku's style by `spruce.cli.base.run`, the exit status it chose.

    result = CliRunner().invoke(spruce, ["certs:info", "-a", "shop"])
"""

from __future__ import annotations

import click

import spruce.cli.main  # noqa: F401  (importing registers every command)
from spruce.cli.base import run


@click.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    }
)
@click.pass_context
def spruce(ctx: click.Context) -> None:
    raise SystemExit(run(list(ctx.args)))
