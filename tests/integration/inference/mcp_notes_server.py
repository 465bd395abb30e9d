"""A small stdio MCP server, deployed in the tests as an app's `mcp-notes` process type."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

app = MCPServer("notes")


@app.tool(description="List the note files of this app.")
def list_notes() -> str:
    return "\n".join(sorted(n for n in os.listdir(".") if n.endswith(".note")))


@app.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


if __name__ == "__main__":
    app.run("stdio")
