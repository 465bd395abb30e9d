"""Serves a page saying whether the release phase ran (python3 stdlib only)."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"release phase ran\n" if os.path.exists("release-done.txt") else b"no release\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(
    (os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "5000"))), Handler
).serve_forever()
