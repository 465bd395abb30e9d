from __future__ import annotations

import re

from spruce.logs.colors import LineColorizer, format_line
from spruce.logs.lines import LogLine

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_plain_format_has_no_escapes() -> None:
    line = LogLine(1, 0.0, "app", "web.1", "hi")
    assert format_line(line) == "1970-01-01T00:00:00.000000+00:00 app[web.1]: hi"
    assert format_line(line, color=False) == format_line(line)


def test_colour_keeps_the_text() -> None:
    line = LogLine(1, 0.0, "heroku", "router", "at=error code=H12 status=503 service=30000ms")
    coloured = format_line(line, color=True)
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == format_line(line)


def test_colour_per_process_type_like_heroku_cli() -> None:
    c = LineColorizer()
    assert c.color_for("web.1") == c.color_for("web.2")
    assert c.color_for("run") != c.color_for("router") != c.color_for("web")
    first_new = c.color_for("worker")
    assert c.color_for("worker.7") == first_new
    assert c.color_for("clock") != first_new


def test_router_status_colours() -> None:
    c = LineColorizer()
    ok = c.colorize("t heroku[router]: status=200")
    err = c.colorize("t heroku[router]: status=503")
    assert "\x1b[32m200" in ok
    assert "\x1b[31m503" in err


def test_unparsable_line_is_unchanged() -> None:
    assert format_line("no header here", color=True) == "no header here"
