"""Entry point of the `spruce` command."""

from __future__ import annotations

import sys
import warnings

from . import (  # noqa: F401  (importing registers the commands)
    addons,
    ai,
    apps,
    browse,
    certs,
    deploy,
    dynos,
    exec,
    gitremote,
    local,
    logs,
    manage,
    mcp,
    pipelines,
    spaces,
    telemetry,
)
from .base import run


def main() -> None:
    # Library warnings (deprecations and the like) are for developers, not the terminal.
    warnings.simplefilter("ignore")
    sys.exit(run())


if __name__ == "__main__":
    main()
