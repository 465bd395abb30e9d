"""A plain WSGI app served by gunicorn (see Procfile)."""

import os


def app(environ, start_response):
    body = f"Hello from Spruce! dyno={os.environ.get('DYNO', '?')}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
