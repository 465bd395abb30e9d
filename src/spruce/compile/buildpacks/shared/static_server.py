"""A small static file server for Spruce's static buildpack (python3 stdlib only).

Serves `public/` (or the app root when there is no `public/`) on $PORT. `static.json` may set
`{"root": "dist", "clean_urls": true}`; `clean_urls` maps `/about` to `about.html`. Dotfiles
(and the .spruce directory that holds this script) are never served.
"""

import functools
import json
import os
import socket
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config():
    path = os.path.join(APP_DIR, "static.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


class Handler(SimpleHTTPRequestHandler):
    clean_urls = False

    def translate_path(self, path):
        local = super().translate_path(path)
        if self.clean_urls and not os.path.exists(local) and os.path.isfile(local + ".html"):
            return local + ".html"
        return local

    def send_head(self):
        parts = self.path.split("?", 1)[0].split("/")
        if any(part.startswith(".") and part not in ("", ".") for part in parts):
            self.send_error(404, "Not Found")
            return None
        return super().send_head()

    def log_message(self, fmt, *args):
        sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
        sys.stdout.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host, port, handler):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)


def main():
    config = load_config()
    default_root = "public" if os.path.isdir(os.path.join(APP_DIR, "public")) else "."
    root = os.path.join(APP_DIR, config.get("root", default_root))
    port = int(os.environ.get("PORT", "5000"))
    host = os.environ.get("HOST", "0.0.0.0")
    Handler.clean_urls = bool(config.get("clean_urls", False))
    server = Server(host, port, functools.partial(Handler, directory=root))
    print(f"static server listening on {host}:{port} serving {root}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
