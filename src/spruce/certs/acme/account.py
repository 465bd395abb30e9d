"""The ACME account: a private key (JWK) and the account URL the CA gave it.

The platform keeps `to_json()` in its store (it holds the private key: store it encrypted)
and hands it back with `AcmeAccount.from_json` after a restart; the same key and URL mean
the same account at the CA, so rate limits and authorizations carry over.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from josepy.b64 import b64encode
from josepy.errors import DeserializationError
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA


@dataclass(frozen=True)
class AcmeAccount:
    key: JWK
    uri: str | None = None
    """The account URL (the JWS `kid`), None until the CA registered the key."""
    directory_url: str | None = None
    """The directory the account belongs to: a new directory means a new account."""

    @classmethod
    def generate(cls) -> AcmeAccount:
        return cls(JWKEC(key=ec.generate_private_key(ec.SECP256R1())))

    @property
    def alg(self) -> JWASignature:
        # ES256 for the P-256 keys Spruce makes; an imported RSA or P-384 key keeps working.
        if isinstance(self.key, JWKRSA):
            return RS256
        if isinstance(self.key, JWKEC) and self.key.key.curve.name == "secp384r1":
            return ES384
        return ES256

    def thumbprint(self) -> str:
        return b64encode(self.key.thumbprint()).decode()

    def registered(self, uri: str, directory_url: str) -> AcmeAccount:
        return replace(self, uri=uri, directory_url=directory_url)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key.to_json(), "uri": self.uri, "directory_url": self.directory_url}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AcmeAccount:
        try:
            key = JWK.from_json(data["key"])
            assert isinstance(key, JWK)
        except (KeyError, TypeError, DeserializationError) as e:
            raise ValueError(f"not an ACME account record: {type(e).__name__}") from None
        # josepy wraps keys; a private JWK is one whose JSON carries "d".
        if not isinstance(key, JWKEC | JWKRSA) or "d" not in key.to_partial_json():
            raise ValueError("the ACME account key must be a private key")
        uri = data.get("uri")
        directory = data.get("directory_url")
        return cls(
            key,
            uri if isinstance(uri, str) else None,
            directory if isinstance(directory, str) else None,
        )
