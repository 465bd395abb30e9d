"""ps:scale's argument syntax, one parser for the CLI and the MCP tool. Pure: it imports
no store, so the CLI parses before it loads anything else."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import InvalidParams

SCALE_ARG = re.compile(r"^([a-zA-Z0-9_-]+)([=+-])(\d+)?(?::([a-zA-Z0-9-]+))?$")
SCALE_USAGE = "use TYPE=AMOUNT[:SIZE], TYPE+AMOUNT or TYPE-AMOUNT, e.g. web=2:standard-1x worker+1"


def parse_scale(args: str | Sequence[str]) -> list[dict[str, Any]]:
    """`ps:scale`'s arguments (`web=2 worker+1 web=1:standard-2x`, space- or
    comma-separated) as formation updates, with Heroku's relative quantities ("+1",
    "-1") that `Formations.update` counts from the quantity at the time. The one parser
    of the CLI and the MCP tool."""
    words = [
        w
        for arg in ([args] if isinstance(args, str) else args)
        for w in re.split(r"[\s,]+", arg)
        if w
    ]
    if not words:
        raise InvalidParams(f"Nothing to scale: {SCALE_USAGE}.")
    updates: list[dict[str, Any]] = []
    for word in words:
        m = SCALE_ARG.match(word)
        if not m:
            raise InvalidParams(f"Invalid scale argument {word!r}: {SCALE_USAGE}.")
        ptype, op, amount, size = m.groups()
        upd: dict[str, Any] = {"type": ptype}
        if amount is not None:
            upd["quantity"] = int(amount) if op == "=" else f"{op}{int(amount)}"
        elif op != "=" or size is None:
            raise InvalidParams(f"Invalid scale argument {word!r}: {SCALE_USAGE}.")
        if size:
            upd["size"] = size
        updates.append(upd)
    return updates
