"""The services layer: the one place where Spruce's business rules live.

The API, the git endpoint, the CLI's local commands and the MCP tools all call these
objects and translate what they return (services/views.py); none of them holds a rule of
its own. What services drive in the outside world comes in through the ports
(services/ports.py), built once by the composition root (spruce.platform).

Importing the package costs nothing: `Services`, `Ports` and `ServiceSettings` (assembly.py)
load on first use, so a command that needs one pure rule (the CLI's ps:scale parser, say)
does not load every service, SQLAlchemy and alembic with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .assembly import Ports, Services, ServiceSettings

__all__ = ["Ports", "ServiceSettings", "Services"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import assembly

        return getattr(assembly, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
