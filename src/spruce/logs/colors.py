"""Colouring log lines for a terminal, the way Heroku's CLI does it.

The header `source[process]:` gets one colour per process type (`web.1` and `web.2` share
one); `run`, `router`, `web` and `postgres` always get the same colours, others take the next
colour of the palette in order of appearance. Router lines get their `status`, `at=error`,
`code` and timing fields highlighted.
"""

from __future__ import annotations

import re

from spruce.logs.lines import LogLine, display_line

_RESET = "\x1b[0m"


def _sgr(*codes: int) -> str:
    return "\x1b[" + ";".join(str(c) for c in codes) + "m"


YELLOW, GREEN, CYAN, MAGENTA, BLUE, RED, DIM, BOLD = 33, 32, 36, 35, 34, 31, 2, 1
BRIGHT_GREEN, BRIGHT_YELLOW = 92, 93

PALETTE: tuple[tuple[int, ...], ...] = (
    (YELLOW,),
    (GREEN,),
    (CYAN,),
    (MAGENTA,),
    (BLUE,),
    (BOLD, GREEN),
    (BOLD, CYAN),
    (BOLD, MAGENTA),
    (BOLD, YELLOW),
    (BOLD, BLUE),
)
_FIXED = ("run", "router", "web", "postgres", "heroku-postgres")

_LINE_RE = re.compile(r"^(.*?\[([\w-]+)([\d.]+)?\]:)(.*)$", re.DOTALL)


def paint(text: str, codes: tuple[int, ...]) -> str:
    return _sgr(*codes) + text + _RESET


class LineColorizer:
    """Keeps the identifier -> colour assignment of one terminal session."""

    def __init__(self) -> None:
        self._assigned: dict[str, tuple[int, ...]] = {}
        for ident in _FIXED:
            self.color_for(ident)

    def color_for(self, identifier: str) -> tuple[int, ...]:
        ident = identifier.split(".", 1)[0]
        found = self._assigned.get(ident)
        if found is None:
            found = PALETTE[len(self._assigned) % len(PALETTE)]
            self._assigned[ident] = found
        return found

    def colorize(self, text: str) -> str:
        m = _LINE_RE.match(text)
        if m is None:
            return text
        header, ident, body = m.group(1), m.group(2), m.group(4).strip()
        if ident == "router":
            body = _colorize_router(body, self)
        return paint(header, self.color_for(ident)) + " " + body


def _status(value: str) -> str:
    if not value.isdigit():
        return value
    code = int(value)
    if code < 200:
        return value
    if code < 300:
        return paint(value, (GREEN,))
    if code < 400:
        return paint(value, (CYAN,))
    if code < 500:
        return paint(value, (YELLOW,))
    return paint(value, (RED,))


def _millis(value: str) -> str:
    digits = value.removesuffix("ms")
    if not digits.isdigit():
        return value
    ms = int(digits)
    if ms < 100:
        return paint(value, (BRIGHT_GREEN,))
    if ms < 500:
        return paint(value, (GREEN,))
    if ms < 5000:
        return paint(value, (YELLOW,))
    if ms < 10000:
        return paint(value, (BRIGHT_YELLOW,))
    return paint(value, (RED,))


def _colorize_router(body: str, colorizer: LineColorizer) -> str:
    out: list[str] = []
    for token in body.split(" "):
        key, sep, value = token.partition("=")
        if not sep:
            out.append(paint(token, (DIM,)) if token else token)
            continue
        if key == "at":
            value = paint(value, (RED,)) if value == "error" else paint(value, (DIM,))
        elif key == "code":
            value = paint(value, (BOLD, RED))
        elif key == "method":
            value = paint(value, (MAGENTA,))
        elif key == "path":
            value = paint(value, (GREEN,))
        elif key == "dyno" and value:
            value = paint(value, colorizer.color_for(value))
        elif key == "status":
            value = _status(value)
        elif key in ("connect", "service"):
            value = _millis(value)
        else:
            value = paint(value, (DIM,)) if value else value
        out.append(paint(key + "=", (DIM,)) + value)
    return " ".join(out)


_default = LineColorizer()


def format_line(line: LogLine | str, color: bool = False) -> str:
    """A line for a terminal: Heroku's display format, coloured when `color` is true.

    Accepts a `LogLine` or an already formatted line (what a log session streams).
    """
    text = display_line(line) if isinstance(line, LogLine) else line
    return _default.colorize(text) if color else text
