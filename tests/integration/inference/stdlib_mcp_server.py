"""A stdio MCP server in the standard library only, for real dynos (no `mcp` package there).

It speaks the protocol's three calls that the platform's client makes: initialize,
tools/list and tools/call; the client on the other side is the `mcp` SDK's.
"""

import json
import os
import sys

TOOLS = [
    {
        "name": "list_notes",
        "description": "List the note files of this app.",
        "inputSchema": {"type": "object", "properties": {}},
    }
]


def answer(msg):
    method = msg.get("method")
    if method == "initialize":
        return {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "notes", "version": "1"},
        }
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        notes = sorted(n for n in os.listdir(".") if n.endswith(".note"))
        return {"content": [{"type": "text", "text": "\n".join(notes)}], "isError": False}
    return None


for line in sys.stdin:
    if not line.strip():
        continue
    msg = json.loads(line)
    if "id" not in msg:
        continue  # a notification
    result = answer(msg)
    reply = {"jsonrpc": "2.0", "id": msg["id"]}
    if result is None:
        reply["error"] = {"code": -32601, "message": "Method not found"}
    else:
        reply["result"] = result
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
