"""The ACME certificate issuer: orders advanced one step at a time from a persisted record.

`begin(hostnames)` makes a record (no network); `advance(record)` does one step against the
CA and returns the next record; the platform stores each record before the next step, so a
restart at any point resumes with `advance(stored_record)`. Each step reads the order's
state from the CA rather than trusting local state, and challenges are written to the
record before they are published (so whatever was published can be withdrawn).

Blocking (requests underneath): the platform runs `advance` in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

import requests
from acme import client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.errors import DeserializationError

from spruce.services.acm_model import OrderRecord

from . import challenges
from .account import AcmeAccount
from .challenges import Publication, normalize
from .network import AcmeNetwork, GoneAtCA, RetryLater, retry_after
from .ports import Dns01Provider, Http01Responder

log = logging.getLogger(__name__)
_Resource = TypeVar("_Resource", messages.Order, messages.Authorization)

MAX_TRANSIENT_ERRORS = 8
MAX_BACKOFF = dt.timedelta(minutes=10)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AcmeIssuer:
    """Issues certificates from one ACME directory with one account."""

    def __init__(
        self,
        directory_url: str,
        account: AcmeAccount,
        *,
        email: str | None = None,
        ca_bundle: str | None = None,
        http01: Http01Responder | None = None,
        dns01: Dns01Provider | None = None,
        save_account: Callable[[AcmeAccount], None] | None = None,
        poll_interval: dt.timedelta = dt.timedelta(seconds=1),
        nonce_retries: int = 10,
        timeout: int = 30,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.directory_url = directory_url
        self.account = account
        self.email = email
        self.http01 = http01
        self.dns01 = dns01
        self._save_account = save_account
        self._poll = poll_interval
        self._now = now
        self.net = AcmeNetwork(
            account.key,
            alg=account.alg,
            ca_bundle=ca_bundle,
            nonce_retries=nonce_retries,
            timeout=timeout,
        )
        self._client: client.ClientV2 | None = None
        self._live: set[Publication] = set()  # published by this process since it started

    # -- what the platform asks before ordering ------------------------------------------

    def problem_for(self, hostname: str) -> str | None:
        """Why this issuer cannot validate `hostname` at all, as a sentence, or None."""
        return challenges.unanswerable(
            hostname, http01=self.http01 is not None, dns01=self.dns01 is not None
        )

    def caa_identities(self) -> tuple[str, ...]:
        """The CAA issuer domains the CA's directory lists (meta.caaIdentities)."""
        meta = self._ensure_client().directory.meta
        return tuple(str(i) for i in (meta.caa_identities or ()))

    # -- the order ------------------------------------------------------------------------

    def begin(self, hostnames: Iterable[str]) -> OrderRecord:
        names = tuple(dict.fromkeys(normalize(h) for h in hostnames))
        if not names:
            raise ValueError("an order needs at least one hostname")
        for name in names:
            problem = self.problem_for(name)
            if problem:
                raise ValueError(problem)
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return OrderRecord(hostnames=names, key_pem=key_pem, started_at=self._now())

    def advance(self, record: OrderRecord) -> OrderRecord:
        """One step of `record` against the CA; returns the record to store."""
        if record.done:
            return record
        try:
            self._ensure_client()
            self._ensure_account()
            if record.stage == "new":
                step = self._new_order(record)
            elif record.stage == "authorizing":
                step = self._authorize(record)
            else:
                step = self._finalize(record)
            if step.done:
                return step
            return replace(step, errors=0, rate_limited=False, problem=None)
        except RetryLater as e:
            what = "rate limit" if e.rate_limited else "unavailability"
            return replace(
                record,
                retry_at=e.retry_at,
                rate_limited=e.rate_limited,
                problem=f"The certificate authority asked Spruce to wait ({what}): {e.detail}",
            )
        except GoneAtCA as e:
            if self._client is None or record.stage == "new":
                return self._invalid(
                    record, f"The ACME directory {self.directory_url} answered: {e}"
                )
            # The CA forgot the order (expired, or the CA restarted): start a fresh one.
            self._withdraw(record.publications)
            return replace(record, stage="new", order_url=None, publications=(), retry_at=None)
        except messages.Error as e:
            if e.code == "accountDoesNotExist":
                self.account = replace(self.account, uri=None)
                return replace(record, retry_at=None)
            if e.code in ("serverInternal", "connection", "dns"):
                return self._transient(record, f"{e.detail or e.code}")
            return self._invalid(record, _sentence(e))
        except (
            requests.RequestException,
            errors.ClientError,
            errors.TimeoutError,
            DeserializationError,  # not an ACME answer (a proxy's error page, say)
        ) as e:
            return self._transient(record, f"{type(e).__name__}")

    def complete(
        self,
        record: OrderRecord,
        *,
        persist: Callable[[OrderRecord], None] | None = None,
        timeout: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> OrderRecord:
        """Advance until done or `timeout` seconds passed, storing each step via `persist`."""
        deadline = time.monotonic() + timeout
        while not record.done:
            if record.retry_at is not None:
                wait = (record.retry_at - self._now()).total_seconds()
                if wait > deadline - time.monotonic():
                    return record
                if wait > 0:
                    sleep(wait)
            if time.monotonic() > deadline:
                return record
            record = self.advance(record)
            if persist is not None:
                persist(record)
        return record

    def abandon(self, record: OrderRecord) -> OrderRecord:
        """Stop an order (its domain set changed): withdraw its challenges."""
        self._withdraw(record.publications)
        if record.done:
            return replace(record, publications=())
        return replace(record, stage="invalid", publications=(), problem="Order abandoned.")

    # -- steps ------------------------------------------------------------------------------

    def _new_order(self, record: OrderRecord) -> OrderRecord:
        orderr = self._ensure_client().new_order(self._csr(record))
        if not orderr.uri:
            raise errors.ClientError("the CA returned no order URL")
        return replace(record, stage="authorizing", order_url=orderr.uri, retry_at=None)

    def _authorize(self, record: OrderRecord) -> OrderRecord:
        assert record.order_url is not None
        order, _ = self._get(record.order_url, messages.Order)
        if order.status in (
            messages.STATUS_READY,
            messages.STATUS_PROCESSING,
            messages.STATUS_VALID,
        ):
            return replace(record, stage="finalizing", retry_at=None)
        wanted: list[tuple[Publication, messages.ChallengeBody]] = []
        failed: list[tuple[str, str]] = []
        waits: list[dt.datetime] = []
        for url in order.authorizations:
            authz, response = self._get(url, messages.Authorization)
            ident = str(authz.identifier.value)
            shown = f"*.{ident}" if authz.wildcard else ident
            if authz.status == messages.STATUS_VALID:
                continue
            if authz.status != messages.STATUS_PENDING:
                failed.append((shown, _authz_failure(authz, shown)))
                continue
            challb = challenges.choose(
                authz,
                record.hostnames,
                http01=self.http01 is not None,
                dns01=self.dns01 is not None,
            )
            if challb is None:
                failed.append((shown, f"No challenge Spruce can answer was offered for {shown}."))
                continue
            zone = self.dns01.zone if self.dns01 is not None else None
            pub = challenges.publication(challb, ident, self.account.key, zone)
            wanted.append((pub, challb))
            waits.append(retry_after(response.headers.get("Retry-After"), self._now(), self._poll))
        if failed or order.status == messages.STATUS_INVALID:
            if not failed:
                failed.append(("", _sentence(order.error) if order.error else "Order invalid."))
            return self._invalid(record, failed[0][1], failed)
        new = tuple(p for p, _ in wanted if p not in record.publications)
        if new:
            # Write-ahead: the caller stores these before the next step publishes them.
            return replace(record, publications=record.publications + new, retry_at=None)
        for pub, challb in wanted:
            self._publish(pub)
            if challb.status == messages.STATUS_PENDING:
                self._ensure_client().answer_challenge(challb, challb.response(self.account.key))
        retry = max([self._now() + self._poll, *waits])
        return replace(record, retry_at=min(retry, self._now() + MAX_BACKOFF))

    def _finalize(self, record: OrderRecord) -> OrderRecord:
        assert record.order_url is not None
        order, response = self._get(record.order_url, messages.Order)
        if order.status == messages.STATUS_READY:
            orderr = messages.OrderResource(
                body=order, uri=record.order_url, csr_pem=self._csr(record)
            )
            try:
                self._ensure_client().begin_finalization(orderr)
            except messages.Error as e:
                if e.code != "orderNotReady":
                    raise
                return replace(record, stage="authorizing", retry_at=None)
            return replace(record, retry_at=self._now() + self._poll)
        if order.status == messages.STATUS_PROCESSING:
            when = retry_after(response.headers.get("Retry-After"), self._now(), self._poll)
            return replace(record, retry_at=when)
        if order.status == messages.STATUS_VALID and order.certificate:
            chain = self._post_as_get(order.certificate).text
            self._withdraw(record.publications)
            return replace(
                record,
                stage="valid",
                certificate_pem=chain,
                publications=(),
                retry_at=None,
                problem=None,
            )
        if order.status == messages.STATUS_PENDING:
            return replace(record, stage="authorizing", retry_at=None)
        reason = _sentence(order.error) if order.error else "The certificate order failed."
        return self._invalid(record, reason)

    # -- helpers ----------------------------------------------------------------------------

    def _ensure_client(self) -> client.ClientV2:
        if self._client is None:
            directory = client.ClientV2.get_directory(self.directory_url, self.net)
            self._client = client.ClientV2(directory, self.net)
        return self._client

    def _ensure_account(self) -> None:
        acme = self._ensure_client()
        account = self.account
        if account.uri is not None and account.directory_url == self.directory_url:
            if self.net.account is None or self.net.account.uri != account.uri:
                self.net.account = messages.RegistrationResource(
                    uri=account.uri, body=messages.Registration()
                )
            return
        self.net.account = None
        reg = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
        try:
            uri = acme.new_account(reg).uri
        except errors.ConflictError as e:  # this key already has an account: reuse it
            uri = e.location
        if not uri:
            raise errors.ClientError("the CA returned no account URL")
        self.net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
        self.account = account.registered(uri, self.directory_url)
        if self._save_account is not None:
            self._save_account(self.account)

    def _csr(self, record: OrderRecord) -> bytes:
        return crypto_util.make_csr(record.key_pem.encode(), list(record.hostnames))

    def _post_as_get(self, url: str) -> requests.Response:
        new_nonce = self._ensure_client().directory["newNonce"]
        return self.net.post(url, None, new_nonce_url=new_nonce)

    def _get(self, url: str, kind: type[_Resource]) -> tuple[_Resource, requests.Response]:
        response = self._post_as_get(url)
        return kind.from_json(response.json()), response

    def _publish(self, pub: Publication) -> None:
        if pub in self._live:
            return
        if pub.kind == "http-01":
            assert self.http01 is not None
            self.http01.publish(pub.name, pub.value)
        else:
            assert self.dns01 is not None
            self.dns01.publish(pub.name, pub.value)
        self._live.add(pub)

    def _withdraw(self, pubs: Sequence[Publication]) -> None:
        for pub in pubs:
            try:
                if pub.kind == "http-01" and self.http01 is not None:
                    self.http01.withdraw(pub.name)
                elif pub.kind == "dns-01" and self.dns01 is not None:
                    self.dns01.withdraw(pub.name, pub.value)
            except Exception as e:  # noqa: BLE001 - a stale TXT value harms no later order
                log.warning("could not withdraw %s challenge at %s: %s", pub.kind, pub.name, e)
            self._live.discard(pub)

    def _transient(self, record: OrderRecord, detail: str) -> OrderRecord:
        errors_ = record.errors + 1
        problem = f"Spruce could not reach the certificate authority ({detail}); it will retry."
        if errors_ > MAX_TRANSIENT_ERRORS:
            return self._invalid(replace(record, errors=errors_), problem)
        backoff = min(self._poll * (2**errors_), MAX_BACKOFF)
        return replace(record, errors=errors_, retry_at=self._now() + backoff, problem=problem)

    def _invalid(
        self, record: OrderRecord, problem: str, failed: Sequence[tuple[str, str]] = ()
    ) -> OrderRecord:
        self._withdraw(record.publications)
        return replace(
            record,
            stage="invalid",
            publications=(),
            retry_at=None,
            problem=problem,
            failed=tuple(f for f in failed if f[0]),
        )


def _sentence(error: messages.Error) -> str:
    detail = error.detail or error.description or error.typ
    return f"The certificate authority refused the order ({error.code or error.typ}): {detail}"


def _authz_failure(authz: messages.Authorization, shown: str) -> str:
    for challb in authz.challenges:
        if challb.error is not None:
            detail = challb.error.detail or challb.error.code or "no detail"
            return (
                f"The certificate authority could not validate {shown} over "
                f"{str(challb.chall.typ).upper()}: {detail}"
            )
    return f"The certificate authority marked the authorization for {shown} {authz.status}."
