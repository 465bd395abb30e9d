"""Challenge choice and what each publication holds (RFC 8555 8.1, 8.3, 8.4)."""

from __future__ import annotations

import hashlib

from acme import messages
from josepy.b64 import b64encode

from spruce.certs.acme import AcmeAccount, Http01Tokens
from spruce.certs.acme.challenges import (
    choose,
    delegation_cname,
    dns01_record_name,
    needs_dns01,
    publication,
)
from spruce.certs.dns.prechecks import unanswerable

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


def authz(value: str, kinds: list[str], wildcard: bool = False) -> messages.Authorization:
    return messages.Authorization.from_json(
        {
            "identifier": {"type": "dns", "value": value},
            "status": "pending",
            "wildcard": wildcard,
            "challenges": [
                {
                    "type": k,
                    "url": f"https://ca.test/chall/{k}",
                    "status": "pending",
                    "token": TOKEN,
                }
                for k in kinds
            ],
        }
    )


ALL = ["http-01", "dns-01", "tls-alpn-01"]


def test_dns01_names_in_and_outside_spruce_zone():
    assert dns01_record_name("*.Shop.Test.", "acme.spruce.test") == "shop.test.acme.spruce.test"
    assert dns01_record_name("app.acme.spruce.test", "acme.spruce.test.") == (
        "_acme-challenge.app.acme.spruce.test"
    )
    assert delegation_cname("*.shop.test", "acme.spruce.test") == (
        "_acme-challenge.shop.test",
        "shop.test.acme.spruce.test",
    )
    assert delegation_cname("x.acme.spruce.test", "acme.spruce.test") is None


def test_choice_http01_for_plain_names_dns01_for_wildcards_and_their_apex():
    order = ["*.shop.test", "shop.test", "www.other.test"]
    assert needs_dns01("shop.test", order) and needs_dns01("*.shop.test", [])
    assert not needs_dns01("www.other.test", order)

    def pick(a: messages.Authorization, **kw: bool) -> str | None:
        challb = choose(a, order, **kw)
        return None if challb is None else str(challb.chall.typ)

    assert pick(authz("shop.test", ["dns-01"], wildcard=True), http01=True, dns01=True) == "dns-01"
    assert pick(authz("shop.test", ALL), http01=True, dns01=True) == "dns-01"
    assert pick(authz("www.other.test", ALL), http01=True, dns01=True) == "http-01"
    assert pick(authz("www.other.test", ALL), http01=False, dns01=True) == "dns-01"
    # Without a DNS provider the apex beside a wildcard can still use HTTP-01...
    assert pick(authz("shop.test", ALL), http01=True, dns01=False) == "http-01"
    # ... but the wildcard cannot, and that is said before any order.
    assert (
        choose(authz("shop.test", ["dns-01"], wildcard=True), order, http01=True, dns01=False)
        is None
    )
    assert "no DNS provider is configured" in (
        unanswerable("*.shop.test", http01=True, dns01=False) or ""
    )
    assert unanswerable("www.shop.test", http01=True, dns01=False) is None


def test_publications_carry_the_key_authorization_and_its_digest():
    account = AcmeAccount.generate()
    thumb = account.thumbprint()
    key_auth = f"{TOKEN}.{thumb}"
    a = authz("shop.test", ALL)
    http = publication(a.challenges[0], "shop.test", account.key, None)
    assert (http.kind, http.name, http.value) == ("http-01", TOKEN, key_auth)
    dns = publication(a.challenges[1], "shop.test", account.key, "acme.spruce.test")
    digest = b64encode(hashlib.sha256(key_auth.encode()).digest()).decode()
    assert (dns.kind, dns.name, dns.value) == ("dns-01", "shop.test.acme.spruce.test", digest)


def test_http01_tokens_answer_only_their_path():
    tokens = Http01Tokens()
    tokens.publish(TOKEN, "ka")
    assert tokens.answer(f"/.well-known/acme-challenge/{TOKEN}") == "ka"
    assert tokens.answer(f"/.well-known/acme-challenge/{TOKEN}?x=1") == "ka"
    assert tokens.answer(f"/.well-known/acme-challenge/{TOKEN}/more") is None
    assert tokens.answer(f"/{TOKEN}") is None
    assert tokens.answer("/.well-known/acme-challenge/") is None
    tokens.withdraw(TOKEN)
    tokens.withdraw("never-published")
    assert tokens.answer(f"/.well-known/acme-challenge/{TOKEN}") is None and len(tokens) == 0
