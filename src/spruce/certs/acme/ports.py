"""The seams the ACME issuer drives, defined by services (spruce.services.ports).

The router answers `/.well-known/acme-challenge/<token>` on the HTTP port (an
`Http01Responder`); a DNS server Spruce may update holds `_acme-challenge` TXT records (a
`Dns01Provider`, e.g. RFC 2136). Both calls are idempotent: the issuer republishes after a
restart, and withdraws what it published once the order is done.
"""

from __future__ import annotations

from spruce.services.ports import Dns01Provider as Dns01Provider
from spruce.services.ports import Http01Responder as Http01Responder
