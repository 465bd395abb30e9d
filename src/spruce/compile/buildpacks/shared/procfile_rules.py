"""Procfile rules shared by Spruce's classic runner and its heroku/procfile CNB (stdlib only).

Heroku matches each line with ``^[[:space:]]*([a-zA-Z0-9_-]+):?\\s+(.*)[[:space:]]*$``; blank
lines and ``#`` comments are skipped; anything else is an error naming its line. On Fir a
process type must also be a CNB process type: lower case `a-z0-9-`, alphanumeric at both ends,
1-63 characters; `_` becomes `-` and upper case is lowered, each with a warning.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"^[ \t\r\f\v]*([a-zA-Z0-9_-]+):?\s+(.*?)[ \t\r\f\v]*$")
_CNB_TYPE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class ProcfileError(ValueError):
    """A Procfile line that is not `type: command`, or a type Fir cannot use."""


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


def cnb_process_type(name: str) -> tuple[str, list[str]]:
    """(the CNB process type for a Procfile key, warnings about what changed)."""
    warnings = []
    fixed = name
    if fixed != fixed.lower():
        warnings.append(f"Process type {name!r} has upper case letters: using {fixed.lower()!r}")
        fixed = fixed.lower()
    if "_" in fixed:
        dashed = fixed.replace("_", "-")
        warnings.append(f"Process type {fixed!r} has underscores: using {dashed!r}")
        fixed = dashed
    if not _CNB_TYPE.match(fixed):
        raise ProcfileError(
            f"Invalid process type {name!r}: use lower-case letters, digits and '-', starting "
            "and ending with a letter or digit, at most 63 characters"
        )
    return fixed, warnings
