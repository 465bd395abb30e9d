"""The seams the ACME issuer drives: who answers HTTP-01 and who writes DNS-01 records.

The router answers `/.well-known/acme-challenge/<token>` on the HTTP port (an
`Http01Responder`); a DNS server Spruce may update holds `_acme-challenge` TXT records (a
`Dns01Provider`, e.g. RFC 2136). Both calls are idempotent: the issuer republishes after a
restart, and withdraws what it published once the order is done.
"""

from __future__ import annotations

from typing import Protocol


class Http01Responder(Protocol):
    def publish(self, token: str, key_authorization: str) -> None:
        """Answer GET /.well-known/acme-challenge/<token> with `key_authorization`."""

    def withdraw(self, token: str) -> None:
        """Stop answering for `token` (unknown tokens are ignored)."""


class Dns01Provider(Protocol):
    @property
    def zone(self) -> str:
        """The zone this provider updates, without a trailing dot (e.g. acme.example.net)."""

    def publish(self, name: str, value: str) -> None:
        """Add a TXT record `value` at the absolute `name` (other values there are kept)."""

    def withdraw(self, name: str, value: str) -> None:
        """Remove that one TXT value at `name` (absent values are ignored)."""
