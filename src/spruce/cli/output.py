"""Terminal output in the Heroku CLI's manner: headers, key/value blocks, tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click


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
    click.echo(f" ›   Warning: {message}", err=True)
