"""CAA evaluation (RFC 8659) on record sets, without DNS."""

from __future__ import annotations

import pytest

from spruce.certs.dns.caa import CaaRecord, CaaSet, ancestors, evaluate

LE = ["letsencrypt.org"]


def caa(*records: str) -> CaaSet:
    return CaaSet("example.com", tuple(CaaRecord.parse(r) for r in records))


def test_ancestors_climb_to_the_tld_not_the_root_and_drop_a_wildcard_label():
    assert ancestors("*.a.b.Example.COM.") == [
        "a.b.example.com",
        "b.example.com",
        "example.com",
        "com",
    ]


@pytest.mark.parametrize(
    ("records", "wildcard", "allowed"),
    [
        (['0 iodef "mailto:x@example.com"'], False, True),  # no issue tag: any CA
        (['0 issue "letsencrypt.org"'], False, True),
        (['0 issue "LetsEncrypt.org."'], False, True),  # case and trailing dot
        (['0 issue "letsencrypt.org; validationmethods=dns-01"'], False, True),
        (['0 issue "other.example"'], False, False),
        (['0 issue "other.example"', '0 issue "letsencrypt.org"'], False, True),
        (['0 issue ";"'], False, False),  # authorizes no CA
        (['0 issue "letsencrypt.org"', '0 issuewild ";"'], False, True),
        (['0 issue "letsencrypt.org"', '0 issuewild ";"'], True, False),
        (['0 issue ";"', '0 issuewild "letsencrypt.org"'], True, True),  # issuewild wins
        (['0 issue "other.example"'], True, False),  # no issuewild: issue applies
        (['128 tbs "x"'], False, False),  # unknown critical tag: nobody issues
        (['0 tbs "x"'], False, True),  # unknown non-critical: ignored
        (['128 issue "letsencrypt.org"'], False, True),  # known critical tag is fine
        (['0 ISSUE "letsencrypt.org"'], False, True),  # tags compare case-insensitively
    ],
)
def test_evaluate(records, wildcard, allowed):
    problem = evaluate(caa(*records), LE, wildcard)
    assert (problem is None) is allowed, problem


def test_the_reason_names_the_owner_the_allowed_cas_and_the_fix():
    assert evaluate(caa('0 issue "b.example"', '0 issue "a.example"'), LE, False) == (
        "A CAA record on example.com allows only a.example, b.example to issue certificates, "
        'not letsencrypt.org. Add a CAA record example.com. CAA 0 issue "letsencrypt.org" or '
        "remove the restriction."
    )
    assert "critical tag 'tbs'" in (evaluate(caa('128 tbs "x"'), LE, False) or "")
