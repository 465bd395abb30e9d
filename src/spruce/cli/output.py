"""Terminal output in the Heroku CLI's manner: action lines, headers, key/value blocks,
tables, warnings and errors.

An action line (`Creating ⬢ demo... done`) is started with `action()` and finished with
`done()`; an error raised in between finishes it with `!` before the error is printed, so
every error reads the same: ` ▸    message` on stderr, under the action's `!`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click


class _ActionLine:
    """The action line waiting for its status, if any (one per process)."""

    open = False
    err = False


_LINE = _ActionLine()


def action(text: str, err: bool = False) -> None:
    """Start an action line: `text... `, ended by done() or, on error, by `!`."""
    click.echo(f"{text}... ", nl=False, err=err)
    _LINE.open, _LINE.err = True, err


def done(status: str = "done") -> None:
    _LINE.open = False
    click.echo(status, err=_LINE.err)


def interrupt_action() -> None:
    """End an open action line with `!` (an error follows)."""
    if _LINE.open:
        _LINE.open = False
        click.echo("!", err=_LINE.err)


def error(message: str) -> None:
    """Heroku's error style: every line as ` ▸    line` on stderr."""
    interrupt_action()
    for line in message.strip("\n").splitlines() or [""]:
        click.echo(f" ▸    {line}".rstrip(), err=True)


def styled_header(text: str) -> None:
    click.echo(click.style(f"=== {text}", bold=True) if sys.stdout.isatty() else f"=== {text}")


def key_values(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0) + 1
    for k, v in pairs:
        click.echo(f"{(k + ':').ljust(width)} {'' if v is None else v}")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[str("" if c is None else c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    click.echo(" " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    click.echo(" " + "  ".join("─" * w for w in widths))
    for r in cells:
        click.echo(" " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def warn(message: str) -> None:
    interrupt_action()
    click.echo(f" ›   Warning: {message}", err=True)
