"""A small static file server for Spruce's static buildpack (python3 stdlib only).

Serves `public/` (or the app root when there is no `public/`) on $PORT. `static.json` takes
the settings Heroku's static buildpack documents:

  root         the directory to serve ("dist")
  clean_urls   `/about` serves `about.html`
  routes       {"/**": "index.html"}: a path with no file of its own serves this file
  redirects    {"/old": {"url": "/new", "status": 302}} (301 by default)
  headers      {"/assets/**": {"Cache-Control": "public, max-age=31536000"}}
  error_page   "404.html": served, with status 404, for paths that do not exist
  https_only   true: requests that reached the router over http are redirected to https

Path patterns: `*` matches within one path segment, `**` across segments. Dotfiles (and the
.spruce directory that holds this script) are never served.
"""

import functools
import json
import os
import re
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


def pattern(glob):
    """static.json path pattern -> compiled regex (`**` any depth, `*` one segment)."""
    out = ""
    for part in re.split(r"(\*\*|\*)", glob):
        out += ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
    return re.compile(out + "$")


class Handler(SimpleHTTPRequestHandler):
    clean_urls = False
    routes = []  # type: list[tuple[re.Pattern[str], str]]  # (path, file under the root)
    redirects = {}  # type: dict[str, tuple[str, int]]  # path -> (url, status)
    headers_for = []  # type: list[tuple[re.Pattern[str], dict[str, str]]]
    error_page = None  # type: str | None
    https_only = False

    def translate_path(self, path):
        local = super().translate_path(path)
        if os.path.exists(local):
            return local
        if self.clean_urls and os.path.isfile(local + ".html"):
            return local + ".html"
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for regex, target in self.routes:
            if regex.match(clean):
                return super().translate_path("/" + target.lstrip("/"))
        return local

    def send_head(self):
        path = self.path.split("?", 1)[0]
        parts = path.split("/")
        if any(part.startswith(".") and part not in ("", ".") for part in parts):
            self.send_error(404, "Not Found")
            return None
        proto = self.headers.get("X-Forwarded-Proto", "")
        if self.https_only and proto == "http":
            return self._redirect("https://" + self.headers.get("Host", "") + self.path, 301)
        if path in self.redirects:
            return self._redirect(*self.redirects[path])
        return super().send_head()

    def _redirect(self, url, status):
        self.send_response(status)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None

    def end_headers(self):
        path = self.path.split("?", 1)[0]
        for regex, values in self.headers_for:
            if regex.match(path):
                for name, value in values.items():
                    self.send_header(name, str(value))
        super().end_headers()

    def send_error(self, code, message=None, explain=None):
        if code == 404 and self.error_page and os.path.isfile(self.error_page):
            with open(self.error_page, "rb") as fh:
                body = fh.read()
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        super().send_error(code, message, explain)

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
    Handler.routes = [(pattern(k), v) for k, v in (config.get("routes") or {}).items()]
    Handler.headers_for = [(pattern(k), v) for k, v in (config.get("headers") or {}).items()
                           if isinstance(v, dict)]  # fmt: skip
    for source, target in (config.get("redirects") or {}).items():
        if isinstance(target, dict) and target.get("url"):
            Handler.redirects[source] = (target["url"], int(target.get("status", 301)))
    if config.get("error_page"):
        Handler.error_page = os.path.join(root, config["error_page"])
    Handler.https_only = bool(config.get("https_only", False))
    server = Server(host, port, functools.partial(Handler, directory=root))
    print(f"static server listening on {host}:{port} serving {root}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
