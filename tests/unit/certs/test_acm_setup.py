"""`spruce up --acme-*` into ACM's parts: bad options get a sentence, good ones a CA."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cli_invoke import spruce
from click.testing import CliRunner

from spruce.certs import acm_setup
from spruce.certs.acme.authority import AcmeAuthority
from spruce.certs.ca import InternalCA
from spruce.certs.internal_authority import InternalAuthority
from spruce.config import AcmeOptions

DNS = "rfc2136://spruce-acme:c2VjcmV0IHNlY3JldA==@127.0.0.1:5353/acme.example.net"


@pytest.mark.parametrize(
    "options,message",
    [
        (AcmeOptions(dns=DNS), "--acme-dns needs --acme-directory"),
        (AcmeOptions(directory="ftp://x"), "must be an https:// URL"),
        (AcmeOptions(directory="https://ca/dir", ca_bundle="/no/such.pem"), "no such file"),
        (AcmeOptions(directory="https://ca/dir", dns="rfc2136://k:notbase64!@h/z"), "base64"),
        (AcmeOptions(directory="https://ca/dir", resolvers=("1.2.3.4:x",)), "--acme-resolver"),
    ],
)
def test_bad_options_are_refused_with_a_reason(options: AcmeOptions, message: str) -> None:
    with pytest.raises(acm_setup.AcmeSetupError, match=message):
        acm_setup.check(options)


def test_the_secret_of_a_bad_dns_url_is_never_shown() -> None:
    with pytest.raises(acm_setup.AcmeSetupError) as e:
        acm_setup.check(AcmeOptions(directory="https://ca/dir", dns=DNS + "?alg=md4"))
    assert "c2VjcmV0" not in str(e.value) and "md4" in str(e.value)


def test_which_authority(tmp_path: Path) -> None:
    ca = InternalCA(tmp_path / "ca")
    internal = acm_setup.authority(AcmeOptions(), ca, {})
    assert isinstance(internal, InternalAuthority) and internal.directory == "internal"
    record = internal.advance(internal.begin(["www.shop.test", "*.shop.test"]))
    assert record.stage == "valid" and "PRIVATE KEY" in record.key_pem
    assert "BEGIN CERTIFICATE" in (record.certificate_pem or "")
    acme = acm_setup.authority(AcmeOptions(directory="https://ca.test/dir", dns=DNS), ca, {})
    assert isinstance(acme, AcmeAuthority) and acme.directory == "https://ca.test/dir"
    assert acme.dns01 is not None and acme.dns01.zone == "acme.example.net"
    # No network until the scheduler asks: a wildcard without DNS-01 is refused at once.
    plain = acm_setup.authority(AcmeOptions(directory="https://ca.test/dir"), ca, {})
    assert plain.problem("*.shop.test", "shop.apps.test", ["*.shop.test"]) is not None
    assert "--acme-dns" in (plain.problem("*.shop.test", "t", ["*.shop.test"]) or "")


def test_policy_from_the_flag_and_the_tuning() -> None:
    p = acm_setup.policy(AcmeOptions(renew_before=8.0), {})
    assert p.renew_before == dt.timedelta(seconds=8)
    p = acm_setup.policy(AcmeOptions(), {"first_retry": 2, "max_attempts": 4, "poll_interval": 1})
    assert (p.renew_before, p.first_retry, p.max_attempts) == (
        dt.timedelta(days=30),
        dt.timedelta(seconds=2),
        4,
    )
    with pytest.raises(acm_setup.AcmeSetupError, match="unknown ACM tuning"):
        acm_setup.policy(AcmeOptions(), {"renew_befor": 1})


def test_spruce_up_refuses_bad_acme_options_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        spruce, ["up", "--home", str(tmp_path), "--acme-renew-before", "soon"]
    )
    assert result.exit_code == 1 and "--acme-renew-before takes a duration" in result.output
    result = CliRunner().invoke(spruce, ["up", "--home", str(tmp_path), "--acme-dns", DNS])
    assert result.exit_code == 1 and "--acme-dns needs --acme-directory" in result.output
    assert not (tmp_path / "spruce.db").exists()
