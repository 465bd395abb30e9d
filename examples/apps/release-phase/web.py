"""Serves the app's VERSION, so you can see which release is live (python3 stdlib only)."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")) as fh:
    VERSION = fh.read().strip()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"release-phase app version {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


address = (os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "5000")))
HTTPServer(address, Handler).serve_forever()
