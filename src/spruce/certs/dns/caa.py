"""CAA (RFC 8659): may the CA issue for this name? Pebble never checks; Let's Encrypt does.

`relevant_set` climbs from the name towards the root (not the root itself) and takes the
first non-empty CAA RRset; `evaluate` applies `issue` / `issuewild` to it. A failed look-up
(SERVFAIL, timeout) forbids issuance, as it does for a CA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .lookup import Lookup, Resolver

# Tags from RFC 8659, RFC 9495 (contact) and the CA/B Forum's mail and VMC ones: known, so a
# critical flag on them does not block issuance.
KNOWN_TAGS = {
    "issue",
    "issuewild",
    "iodef",
    "contactemail",
    "contactphone",
    "issuemail",
    "issuevmc",
}
CRITICAL = 128


@dataclass(frozen=True)
class CaaRecord:
    flags: int
    tag: str
    value: str

    @classmethod
    def parse(cls, text: str) -> CaaRecord:
        """From presentation format: `0 issue "letsencrypt.org"`."""
        flags, tag, value = text.split(None, 2)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return cls(int(flags), tag.lower(), value)

    @property
    def issuer(self) -> str:
        """The issuer domain of an issue/issuewild value ('' authorizes no CA)."""
        return self.value.split(";", 1)[0].strip().lower().rstrip(".")


@dataclass(frozen=True)
class CaaSet:
    owner: str
    records: tuple[CaaRecord, ...]


def ancestors(hostname: str) -> list[str]:
    """`a.b.example.com` -> [a.b.example.com, b.example.com, example.com, com]."""
    labels = hostname.lower().rstrip(".").removeprefix("*.").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def relevant_set(resolver: Resolver, hostname: str) -> CaaSet | Lookup | None:
    """The relevant CAA RRset, None when no ancestor has one, or the failed Lookup."""
    for name in ancestors(hostname):
        found = resolver.lookup(name, "CAA")
        if found.outcome == "error":
            return found
        if found.outcome == "ok" and found.records:
            return CaaSet(name, tuple(CaaRecord.parse(r) for r in found.records))
    return None


def evaluate(caa: CaaSet, ca_identities: Sequence[str], wildcard: bool) -> str | None:
    """None when the CA may issue, else the sentence saying which record forbids it."""
    ids = {i.lower().rstrip(".") for i in ca_identities}
    ca = " or ".join(sorted(ids)) or "this certificate authority"
    for r in caa.records:
        if r.flags & CRITICAL and r.tag not in KNOWN_TAGS:
            return (
                f"A CAA record on {caa.owner} carries the critical tag {r.tag!r}, which no CA "
                "may ignore, so none may issue; remove it or clear its critical flag."
            )
    issuewild = [r for r in caa.records if r.tag == "issuewild"]
    applicable = (
        issuewild if wildcard and issuewild else [r for r in caa.records if r.tag == "issue"]
    )
    if not applicable:
        return None
    if any(r.issuer and r.issuer in ids for r in applicable):
        return None
    allowed = sorted({r.issuer for r in applicable if r.issuer})
    tag = applicable[0].tag
    who = f"only {', '.join(allowed)}" if allowed else "no certificate authority"
    return (
        f"A CAA record on {caa.owner} allows {who} to issue "
        f"{'wildcard ' if tag == 'issuewild' else ''}certificates, not {ca}. "
        f'Add a CAA record {caa.owner}. CAA 0 {tag} "{sorted(ids)[0] if ids else "..."}" '
        "or remove the restriction."
    )


def caa_problem(resolver: Resolver, hostname: str, ca_identities: Sequence[str]) -> str | None:
    """The user-facing reason the CA may not issue for `hostname`, or None."""
    found = relevant_set(resolver, hostname)
    if found is None:
        return None
    if isinstance(found, Lookup):
        return (
            f"The CAA look-up for {hostname} failed ({found.error}); a CA refuses to issue "
            "while it fails. Spruce will retry."
        )
    if not ca_identities:
        return None  # the CA publishes no CAA identity: nothing to compare against
    return evaluate(found, ca_identities, hostname.startswith("*."))
