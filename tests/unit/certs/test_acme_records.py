"""The records the platform stores: order records and accounts round-trip, bad ones refuse."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from spruce.certs.acme import AcmeAccount, OrderRecord, Publication

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def test_an_order_record_round_trips_through_json():
    record = OrderRecord(
        hostnames=("*.shop.test", "shop.test"),
        key_pem="-----BEGIN PRIVATE KEY-----\n...",
        started_at=NOW,
        stage="authorizing",
        order_url="https://ca.test/order/1",
        publications=(
            Publication("dns-01", "shop.test.acme.spruce.test", "abc"),
            Publication("http-01", "tok", "tok.thumb"),
        ),
        retry_at=NOW + dt.timedelta(seconds=30),
        errors=2,
        rate_limited=True,
        problem="wait",
        failed=(("*.shop.test", "no TXT"),),
    )
    again = OrderRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record
    assert not again.done and again.expires_at is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 9}, "unknown order record version 9"),
        ({"stage": "dancing"}, "unknown order stage 'dancing'"),
        ({"publications": [["tls-alpn-01", "a", "b"]]}, "unknown challenge kind"),
        ({"hostnames": None}, "not an order record"),
        ({"started_at": 5}, "not an order record"),
    ],
)
def test_a_bad_order_record_is_refused(change, message):
    data = OrderRecord(hostnames=("a.test",), key_pem="SECRETKEY", started_at=NOW).to_json()
    data.update(change)
    with pytest.raises(ValueError, match=message) as info:
        OrderRecord.from_json(data)
    assert "SECRETKEY" not in str(info.value)


def test_an_account_round_trips_and_keeps_its_thumbprint():
    account = AcmeAccount.generate().registered("https://ca.test/acct/1", "https://ca.test/dir")
    again = AcmeAccount.from_json(json.loads(json.dumps(account.to_json())))
    assert again.uri == account.uri and again.directory_url == account.directory_url
    assert again.thumbprint() == account.thumbprint()
    assert again.alg.name == "ES256"


def test_an_account_record_without_a_private_key_is_refused():
    data = AcmeAccount.generate().to_json()
    secret = data["key"].pop("d")
    with pytest.raises(ValueError, match="must be a private key"):
        AcmeAccount.from_json(data)
    with pytest.raises(ValueError, match="not an ACME account record") as info:
        AcmeAccount.from_json({"key": {"kty": "EC", "d": secret}})
    assert secret not in str(info.value)
