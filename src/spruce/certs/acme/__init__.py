"""Automated Certificate Management over ACME: a client (certbot's `acme`) issuing from
persisted order records, and its challenge responders; `authority.AcmeAuthority` (imported
from its module: it needs spruce.certs.dns) is the adapter of services' CertificateAuthority
port. The records and the ACM rules are services' own
(spruce.services.acm_model, acm_lifecycle)."""

from spruce.services.acm_model import OrderRecord

from .account import AcmeAccount
from .challenges import Publication
from .http01 import Http01Tokens
from .issuer import AcmeIssuer
from .network import RetryLater
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
