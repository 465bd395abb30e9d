"""Automated Certificate Management: an ACME client (certbot's `acme`), its persisted order
records, the challenge ports and the ACM status lifecycle."""

from .account import AcmeAccount
from .challenges import Publication
from .http01 import Http01Tokens
from .issuer import AcmeIssuer
from .network import RetryLater
from .order import OrderRecord
from .ports import Dns01Provider, Http01Responder

__all__ = [
    "AcmeAccount",
    "AcmeIssuer",
    "Dns01Provider",
    "Http01Responder",
    "Http01Tokens",
    "OrderRecord",
    "Publication",
    "RetryLater",
]
