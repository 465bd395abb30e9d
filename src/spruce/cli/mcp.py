"""`spruce mcp` (also `mcp:start`, Heroku's name): Spruce's MCP server over stdio."""

from __future__ import annotations

from .base import cli
from .client import resolve_target


@cli.command("mcp")
def mcp_start() -> None:
    """Serve Spruce's MCP tools over stdio (for Claude Desktop, Cursor, VS Code ...).

    Uses the API URL and key of `spruce login` (or SPRUCE_API_URL and SPRUCE_API_KEY);
    the tools run in the platform, as that user.
    """
    from spruce.mcp.bridge import serve

    url, key = resolve_target()
    serve(url, key)


cli.add_command(mcp_start, "mcp:start")
