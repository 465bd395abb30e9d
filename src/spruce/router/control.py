"""The local control channel between RouterSupervisor and its workers.

Frames are a 4-byte big-endian length then a UTF-8 JSON object with a "t" (type) key, except
router log lines (the bulk of the traffic), which travel as a batch of text lines
"app_id TAB unix-microseconds TAB line" joined by LF behind a leading NUL byte: cheaper to
produce per request than JSON. `read_message` hands both back as dicts.

supervisor -> worker: {"t": "snapshot", "table": SNAPSHOT}, {"t": "upsert", "app": APP},
  {"t": "remove", "app_id": str}, {"t": "app_certs", "app_id": str, "certificates": [CERT]},
  {"t": "stop"}
worker -> supervisor: {"t": "hello", "worker": int, "pid": int}, {"t": "ready", "worker": int},
  log batches (read as {"t": "log", "lines": [[app_id, line, ts], ...]}), {"t": "wake", ...},
  {"t": "activity", "counts": {app_id: requests}}, {"t": "spans", "spans": [RECORD]} (apps
  with a telemetry drain; RECORD's layout is router/trace.py's)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_FRAME = 256 << 20


def encode(msg: dict[str, Any]) -> bytes:
    data = json.dumps(msg, separators=(",", ":")).encode()
    return len(data).to_bytes(4, "big") + data


def log_entry(app_id: str, line: str, ts_us: int) -> str:
    """One line of a log batch (router lines never hold LF; one that did is escaped)."""
    if "\n" in line:
        line = line.replace("\n", "\\n")
    return f"{app_id}\t{ts_us}\t{line}"


def encode_log(entries: list[str]) -> bytes:
    data = b"\0" + "\n".join(entries).encode("utf-8", "replace")
    return len(data).to_bytes(4, "big") + data


def _decode_log(data: bytes) -> dict[str, Any]:
    lines = []
    for entry in data[1:].decode("utf-8", "replace").split("\n"):
        parts = entry.split("\t", 2)
        if len(parts) == 3 and parts[1].isdigit():  # anything else is not a log entry
            lines.append([parts[0], parts[2], int(parts[1]) / 1e6])
    return {"t": "log", "lines": lines}


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    try:
        size = int.from_bytes(await reader.readexactly(4), "big")
        if size > MAX_FRAME:
            raise ValueError("control frame too large")
        data = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        return None
    if data[:1] == b"\0":
        return _decode_log(data)
    msg = json.loads(data)
    if not isinstance(msg, dict):
        raise ValueError("control frame is not an object")
    return msg
