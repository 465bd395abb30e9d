"""DNS for ACM: RFC 2136 updates for DNS-01, and the pre-checks (DNS target, CAA)."""

from .caa import caa_problem
from .lookup import Resolver
from .prechecks import Prechecks, delegation_problem, target_problem
from .rfc2136 import DnsUpdateError, Rfc2136Config, Rfc2136Provider

__all__ = [
    "DnsUpdateError",
    "Prechecks",
    "Resolver",
    "Rfc2136Config",
    "Rfc2136Provider",
    "caa_problem",
    "delegation_problem",
    "target_problem",
]
