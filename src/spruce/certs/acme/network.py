"""The ACME transport: certbot's `ClientNetwork` with the retries Spruce needs.

acme signs every request (JWS) and keeps the nonce pool; on top of it this adds a CA bundle to
trust the directory's TLS, more than acme's single retry on `badNonce` (a CA may reject any
nonce: RFC 8555 7.2 says clients retry), and `RetryLater` for `rateLimited` problems and
503s, carrying the time from the server's Retry-After header, and `GoneAtCA` for a 404.
"""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from acme import client, errors, messages
from josepy.jwa import JWASignature
from josepy.jwk import JWK

DEFAULT_RETRY_AFTER = dt.timedelta(seconds=60)
MAX_RETRY_AFTER = dt.timedelta(days=1)  # a CA asking for longer is treated as asking a day


class RetryLater(Exception):
    """The CA asked us to come back later (rate limit or unavailability)."""

    def __init__(self, detail: str, retry_at: dt.datetime, rate_limited: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_at = retry_at
        self.rate_limited = rate_limited


def retry_after(value: str | None, now: dt.datetime, default: dt.timedelta) -> dt.datetime:
    """When to try again per a Retry-After header (delta-seconds or an HTTP date), in UTC."""
    if value:
        value = value.strip()
        if value.isdigit():
            return now + min(dt.timedelta(seconds=int(value)), MAX_RETRY_AFTER)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return min(max(when, now), now + MAX_RETRY_AFTER)
    return now + default


class GoneAtCA(Exception):
    """A 404 for an ACME resource: the CA no longer knows the order or authorization."""


class AcmeNetwork(client.ClientNetwork):
    """A `ClientNetwork` that retries badNonce and raises `RetryLater` when told to wait."""

    def __init__(
        self,
        key: JWK,
        *,
        alg: JWASignature,
        ca_bundle: str | None = None,
        nonce_retries: int = 10,
        user_agent: str = "spruce-acm",
        timeout: int = 30,
    ) -> None:
        super().__init__(key, alg=alg, user_agent=user_agent, timeout=timeout)
        if ca_bundle is not None:
            # acme hands verify_ssl to requests as `verify=`, which also takes a bundle path.
            self.verify_ssl = ca_bundle  # type: ignore[assignment]
        self.nonce_retries = nonce_retries
        self.bad_nonces = 0  # how many badNonce answers were retried (tests read it)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt >= self.nonce_retries:
                    raise
                attempt += 1
                self.bad_nonces += 1

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as error:
            if response.status_code == 404 and error.code != "accountDoesNotExist":
                raise GoneAtCA(error.detail or str(error)) from error
            if error.code == "rateLimited" or response.status_code == 503:
                raise _retry_later(response, error.detail or str(error), error.code) from error
            raise
        except errors.ClientError:
            if response.status_code == 404:
                raise GoneAtCA(f"HTTP 404 for {response.url}") from None
            if response.status_code in (429, 503):
                raise _retry_later(response, f"HTTP {response.status_code}", None) from None
            raise


def _retry_later(response: requests.Response, detail: str, code: str | None) -> RetryLater:
    now = dt.datetime.now(dt.UTC)
    when = retry_after(response.headers.get("Retry-After"), now, DEFAULT_RETRY_AFTER)
    limited = code == "rateLimited" or response.status_code == 429
    return RetryLater(detail, when, rate_limited=limited)
