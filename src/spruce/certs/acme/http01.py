"""HTTP-01 tokens kept in memory: what the router reads to answer ACME's validation requests."""

from __future__ import annotations

import threading

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class Http01Tokens:
    """An `Http01Responder` backed by a dict; `answer(path)` is the router's lookup.

    Thread-safe: the issuer publishes from a worker thread while the router reads.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def publish(self, token: str, key_authorization: str) -> None:
        with self._lock:
            self._tokens[token] = key_authorization

    def withdraw(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def key_authorization(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def answer(self, path: str) -> str | None:
        """The body for a GET of `path`, or None when it is no challenge we published."""
        if not path.startswith(CHALLENGE_PREFIX):
            return None
        token = path[len(CHALLENGE_PREFIX) :].split("?", 1)[0]
        if not token or "/" in token:
            return None
        return self.key_authorization(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)
