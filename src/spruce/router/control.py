"""The local control channel between RouterSupervisor and its workers.

Frames are a 4-byte big-endian length then a UTF-8 JSON object with a "t" (type) key.

supervisor -> worker: {"t": "snapshot", "table": SNAPSHOT}, {"t": "upsert", "app": APP},
  {"t": "remove", "app_id": str}, {"t": "certs", "certificates": [CERT], "default": CERT|None},
  {"t": "stop"}
worker -> supervisor: {"t": "hello", "worker": int, "pid": int}, {"t": "ready", "worker": int},
  {"t": "log", "lines": [[app_id, line, ts], ...]}, {"t": "wake", "app_id": str},
  {"t": "activity", "counts": {app_id: requests}}
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_FRAME = 256 << 20


def encode(msg: dict[str, Any]) -> bytes:
    data = json.dumps(msg, separators=(",", ":")).encode()
    return len(data).to_bytes(4, "big") + data


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    try:
        size = int.from_bytes(await reader.readexactly(4), "big")
        if size > MAX_FRAME:
            raise ValueError("control frame too large")
        data = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        return None
    msg = json.loads(data)
    if not isinstance(msg, dict):
        raise ValueError("control frame is not an object")
    return msg
