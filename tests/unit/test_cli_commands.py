"""The spruce command table: no warnings, Heroku's aliases, and how errors end a command."""

from __future__ import annotations

import warnings

import click
import pytest
from click.testing import CliRunner

from spruce.cli import main  # noqa: F401  (registers every command)
from spruce.cli.base import ALIASES, cli, run
from spruce.cli.output import action, done


def test_no_command_makes_a_warning() -> None:
    """click warns when two parameters share a flag (the hidden -r of app_option did)."""
    runner = CliRunner()
    for name in sorted(cli.commands):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert [str(w.message) for w in caught] == [], name


def test_every_alias_names_a_command() -> None:
    ctx = click.Context(cli)
    for alias, target in ALIASES.items():
        assert target in cli.commands, alias
        assert cli.get_command(ctx, alias) is cli.commands[target]
    for verb in ("open", "create", "info", "restart", "logout", "help"):
        assert cli.get_command(ctx, verb) is not None, verb


def test_exit_statuses_and_the_error_style(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apps:craete"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        " ▸    apps:craete is not a spruce command.",
        " ▸    Did you mean apps:create?",
        " ▸    Run spruce help for a list of available commands.",
    ]
    assert run(["config:set"]) == 2  # a usage error: the only exit status 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(" ▸    Missing argument")
    assert err[-1] == " ▸    See more help with: spruce config:set --help"
    assert run(["--version"]) == 0
    assert run(["help", "no-such-topic"]) == 1


def test_an_error_ends_the_open_action_line(capsys: pytest.CaptureFixture[str]) -> None:
    @cli.command("test:fails", hidden=True)
    def fails() -> None:
        action("Doing a thing")
        raise click.ClickException("it broke")

    try:
        assert run(["test:fails"]) == 1
    finally:
        del cli.commands["test:fails"]
    out = capsys.readouterr()
    assert out.out == "Doing a thing... !\n"
    assert out.err == " ▸    it broke\n"
    action("Another thing")
    done()
    assert capsys.readouterr().out == "Another thing... done\n"
