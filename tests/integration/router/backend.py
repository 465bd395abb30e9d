"""A tiny misbehaving-on-demand dyno for router tests (stdlib only, run as a subprocess).

    python backend.py PORT NAME [--idle-close SECONDS]

Paths choose the behaviour: /echo, /sleep?s=, /close, /partial, /noreason, /bigcookie,
/chunked, /stall, /ws, /big?n=, /name, /continue, /interim, /double.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit

NAME = "web.1"
IDLE_CLOSE = 60.0
DROP_REUSED = False  # close (without answering) any second request on a connection
DIE_ON_REUSED = False  # exit at once on a second request on a connection (a machine lost)
SERVER: asyncio.Server | None = None
DIE_AT = 0  # exit at once on this request (counted over every connection), 0: never
TOTAL = 0


async def read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_CLOSE)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            headers.append((k, v.strip()))
    h = {k.lower(): v for k, v in headers}
    body = b""
    if h.get("expect", "").lower() == "100-continue" and urlsplit(target).path == "/continue":
        return method, target, headers, body
    if "content-length" in h:
        body = await reader.readexactly(int(h["content-length"]))
    elif h.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return method, target, headers, body


def resp(status: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"X-Dyno: {NAME}\r\n{extra}\r\n"
    ).encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    served = 0
    try:
        while True:
            r = await read_request(reader)
            if r is None:
                break
            served += 1
            if DROP_REUSED and served > 1:
                break
            global TOTAL
            TOTAL += 1
            if (DIE_ON_REUSED and served > 1) or TOTAL == DIE_AT:
                if SERVER is not None:
                    SERVER.close()  # nothing listens any more, then the process is gone
                os._exit(0)
            method, target, headers, body = r
            url = urlsplit(target)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            path = url.path
            if path == "/echo":
                data = json.dumps(
                    {
                        "method": method,
                        "target": target,
                        "headers": headers,
                        "body": body.decode("latin-1"),
                        "dyno": NAME,
                    }
                ).encode()
                writer.write(resp("200 OK", data))
            elif path == "/sleep":
                await asyncio.sleep(float(q.get("s", "1")))
                writer.write(resp("200 OK", b"slept"))
            elif path == "/close":
                break
            elif path == "/partial":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                await writer.drain()
                break
            elif path == "/noreason":
                writer.write(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok")
            elif path == "/bigcookie":
                writer.write(resp("200 OK", b"x", "Set-Cookie: a=" + "b" * 9000 + "\r\n"))
            elif path == "/chunked":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
            elif path == "/stall":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
                await writer.drain()
                await asyncio.sleep(3600)
            elif path == "/big":
                n = int(q.get("n", "1000000"))
                writer.write(resp("200 OK", b"z" * n))
            elif path == "/name":
                writer.write(resp("200 OK", NAME.encode()))
            elif path == "/continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                h = {k.lower(): v for k, v in headers}
                data = await reader.readexactly(int(h.get("content-length", "0")))
                writer.write(resp("200 OK", b"got:" + data))
            elif path == "/interim":
                writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
                writer.write(resp("200 OK", b"after hints"))
            elif path == "/double":  # a second, unsolicited response a moment later
                writer.write(resp("200 OK", b"first"))
                await writer.drain()
                await asyncio.sleep(float(q.get("s", "0.1")))
                writer.write(resp("200 OK", b"unsolicited"))
            elif path == "/ws":
                h = {k.lower(): v for k, v in headers}
                key = h.get("sec-websocket-key", "")
                import base64
                import hashlib

                accept = base64.b64encode(
                    hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
                ).decode()
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
                )
                await writer.drain()
                while True:  # raw echo of frames: the client sees its own masked frames? no:
                    data = await reader.read(65536)
                    if not data:
                        break
                    writer.write(_unmask_echo(data))
                    await writer.drain()
                break
            else:
                writer.write(resp("200 OK", b"hello from " + NAME.encode()))
            await writer.drain()
            if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _unmask_echo(data: bytes) -> bytes:
    """Echo single small client text frames back unmasked (enough for tests)."""
    out = bytearray()
    i = 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        n = b1 & 0x7F
        j = i + 2
        if n == 126:
            n = int.from_bytes(data[j : j + 2], "big")
            j += 2
        mask = data[j : j + 4] if b1 & 0x80 else b"\0\0\0\0"
        j += 4 if b1 & 0x80 else 0
        payload = bytes(c ^ mask[k % 4] for k, c in enumerate(data[j : j + n]))
        header = bytes([b0, n]) if n < 126 else bytes([b0, 126]) + n.to_bytes(2, "big")
        out += header + payload
        i = j + n
    return bytes(out)


async def main() -> None:
    global NAME, IDLE_CLOSE, DROP_REUSED, DIE_ON_REUSED, SERVER, DIE_AT
    port = int(sys.argv[1])
    NAME = sys.argv[2] if len(sys.argv) > 2 else "web.1"
    if "--idle-close" in sys.argv:
        IDLE_CLOSE = float(sys.argv[sys.argv.index("--idle-close") + 1])
    DROP_REUSED = "--drop-reused" in sys.argv
    DIE_ON_REUSED = "--die-on-reused" in sys.argv
    if "--die-at" in sys.argv:
        DIE_AT = int(sys.argv[sys.argv.index("--die-at") + 1])
    server = SERVER = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
