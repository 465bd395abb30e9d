"""pre-receive hook for Spruce's git endpoint (python3 stdlib only; run by git receive-pack).

It hands the pushed ref updates to the git server over a unix socket and prints what the
server sends back. git relays hook output to the pusher as `remote:` lines while it runs, and
a non-zero exit makes receive-pack reject the push without updating any ref.

Wire format, one JSON object per line. Hook -> server:
  {"push_id": ..., "updates": [[old, new, ref], ...], "env": {quarantine variables}}
Server -> hook: {"line": "..."} any number of times, then {"ok": true|false}.
"""

import json
import os
import socket
import sys

QUARANTINE_ENV = ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


def main() -> int:
    socket_path = os.environ.get("SPRUCE_GITSERVE_SOCKET")
    push_id = os.environ.get("SPRUCE_PUSH_ID")
    if not socket_path or not push_id:
        print("Pushes must go through the Spruce git endpoint.")
        return 1
    updates = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
    env = {name: os.environ[name] for name in QUARANTINE_ENV if name in os.environ}
    request = {"push_id": push_id, "updates": updates, "env": env, "cwd": os.getcwd()}
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_path)
        sock.sendall(json.dumps(request).encode() + b"\n")
        for raw in sock.makefile("rb"):
            message = json.loads(raw)
            if "line" in message:
                sys.stdout.write(message["line"] + "\n")
                sys.stdout.flush()
            elif "ok" in message:
                return 0 if message["ok"] else 1
    except OSError as exc:
        print(f"Push failed: cannot reach the build server ({exc.strerror or exc}).")
        return 1
    print("Push failed: the build server closed the connection.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
