"""Procfile parsing with Heroku's line rule.

Heroku matches each line with ``^[[:space:]]*([a-zA-Z0-9_-]+):?\\s+(.*)[[:space:]]*$``; blank
lines and ``#`` comments are skipped. Anything else is a user error we report with its line
number rather than silently dropping the line.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"^[ \t\r\f\v]*([a-zA-Z0-9_-]+):?\s+(.*?)[ \t\r\f\v]*$")


class ProcfileError(ValueError):
    """A Procfile line that is not `type: command`."""


def parse_procfile(text: str) -> dict[str, str]:
    """Return {process_type: command} in file order; later duplicates win, as on Heroku."""
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(raw)
        if match is None:
            raise ProcfileError(
                f"Procfile line {number} is not 'type: command': {raw.strip()!r} "
                "(process types use letters, digits, '_' and '-')"
            )
        name, command = match.group(1), match.group(2).strip()
        if not command:
            raise ProcfileError(f"Procfile line {number}: process type {name!r} has no command")
        processes[name] = command
    return processes
