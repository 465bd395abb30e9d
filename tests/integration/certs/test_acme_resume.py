"""Orders survive a restart: the client is killed between steps and a new process continues
from the stored account and order record."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spruce.certs.acme import AcmeAccount, AcmeIssuer, Http01Tokens, OrderRecord

from .servers import ACME_ZONE, leaf_names, verify_chain

CLIENT = Path(__file__).with_name("resume_client.py")
FAST = dt.timedelta(milliseconds=200)


@pytest.mark.parametrize(
    ("steps", "stage", "published"),
    [
        (1, "authorizing", False),  # the order exists at the CA, nothing published yet
        (2, "authorizing", False),  # the challenges are in the record, not yet in DNS
        (3, "authorizing", True),  # published and answered: the CA validates meanwhile
    ],
)
def test_an_order_killed_between_steps_resumes(
    tmp_path, pebble, bind9, rfc2136, domain, dns_target, steps, stage, published
):
    bind9.set(domain, "A", "127.0.0.1")
    bind9.set(f"_acme-challenge.{domain}", "CNAME", f"{domain}.{ACME_ZONE}.")
    hostnames = [f"*.{domain}", domain]
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CLIENT),
            str(tmp_path),
            pebble.directory_url,
            pebble.ca_bundle,
            bind9.rfc2136_url(),
            str(steps),
            *hostnames,
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.split() == ["READY", stage], line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    record = OrderRecord.from_json(json.loads((tmp_path / "record.json").read_text()))
    account = AcmeAccount.from_json(json.loads((tmp_path / "account.json").read_text()))
    assert record.stage == stage and record.order_url
    txt = bind9.query(f"{domain}.{ACME_ZONE}", "TXT")
    assert (len(txt) == 2) is published
    assert len(record.publications) == (0 if steps == 1 else 2)

    # A new process: same stored account, same record, fresh memory (nothing "live").
    issuer = AcmeIssuer(
        pebble.directory_url, account, ca_bundle=pebble.ca_bundle, dns01=rfc2136, poll_interval=FAST
    )
    done = issuer.complete(record, timeout=60)
    assert done.stage == "valid", done.problem
    assert done.order_url == record.order_url  # the same order, not a new one
    assert leaf_names(done.certificate_pem) == set(hostnames)
    verify_chain(done.certificate_pem, pebble.roots_pem(), hostnames)
    assert bind9.query(f"{domain}.{ACME_ZONE}", "TXT") == []  # cleaned up by the new process


def test_http01_tokens_lost_in_a_restart_are_published_again(
    make_issuer, http01, bind9, domain, dns_target
):
    host = f"www.{domain}"
    bind9.set(host, "CNAME", dns_target + ".")
    first = make_issuer()
    record = first.advance(first.begin([host]))  # order created
    record = first.advance(record)  # token written to the record (write-ahead)
    [pub] = record.publications
    assert http01.tokens.key_authorization(pub.name) is None
    stored = json.dumps(record.to_json())

    # The restarted platform has an empty token table and a new issuer on the same account.
    http01.tokens = Http01Tokens()
    again = AcmeIssuer(
        first.directory_url,
        first.account,
        ca_bundle=first.net.verify_ssl,  # type: ignore[arg-type]
        http01=http01.tokens,
        poll_interval=FAST,
    )
    done = again.complete(OrderRecord.from_json(json.loads(stored)), timeout=60)
    assert done.stage == "valid", done.problem
    assert f"/.well-known/acme-challenge/{pub.name}" in http01.paths_for(host)
    assert len(http01.tokens) == 0


def test_a_ca_that_forgot_the_order_and_account_gets_a_new_order(
    start_pebble, make_issuer, bind9, domain, dns_target
):
    host = f"www.{domain}"
    bind9.set(host, "CNAME", dns_target + ".")
    ca = start_pebble()
    issuer = make_issuer(server=ca)
    record = issuer.advance(issuer.begin([host]))
    first_account = issuer.account.uri
    assert record.stage == "authorizing" and record.order_url
    ca.stop()
    ca.start()  # same address, but pebble keeps no state: account and order are gone
    done = issuer.complete(record, timeout=60)
    assert done.stage == "valid", done.problem
    assert done.order_url != record.order_url
    assert issuer.account.uri != first_account  # registered again, same key
