"""Entry point of the `spruce` command."""

from __future__ import annotations

from . import addons, apps, certs, deploy, dynos, local, logs, manage  # noqa: F401  (importing registers the commands)
from .base import cli


def main() -> None:
    cli(prog_name="spruce")


if __name__ == "__main__":
    main()
