"""A user's credentials as Heroku's API names them: OAuth authorizations (the user's API
keys), OAuth sessions (dashboard sign-ins, each with a key of its own), OAuth clients, and
SSH keys.

Spruce's API keys are the tokens of authorizations: `authorizations:create` makes a key,
`authorizations:rotate` replaces it, `authorizations:revoke` ends it. Only a key's hash is
stored, so a token is shown once, when it is made.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import ApiKey, OAuthClient, SshKey, utcnow

from .accounts import SESSION_KEY, SESSION_TTL, Accounts, generate_key, hash_key
from .errors import InvalidParams, NotFound
from .sealing import Sealer
from .views import AuthorizationView, OAuthClientView, SshKeyView, UserView

SSH_KEY_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _text(value: object, name: str, limit: int = 255, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise InvalidParams(f"{name} must be a string of at most {limit} characters.")
    return value.strip()


def parse_public_key(text: object) -> tuple[str, str, str]:
    """(the key's one line, its SHA256 fingerprint, its comment) or InvalidParams."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParams("public_key is required: the contents of a .pub file.")
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise InvalidParams(
            "Invalid SSH key: expected one line like 'ssh-ed25519 AAAA... comment'."
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParams("Invalid SSH key: its key part is not base64.") from None
    # the blob starts with its own type name, length-prefixed (RFC 4253 section 6.6)
    kind = parts[0].encode()
    if blob[4 : 4 + len(kind)] != kind or int.from_bytes(blob[:4], "big") != len(kind):
        raise InvalidParams("Invalid SSH key: its key part does not match its type.")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return " ".join(parts), f"SHA256:{digest}", " ".join(parts[2:])


class Credentials:
    def __init__(self, store: Store, accounts: Accounts, sealer: Sealer) -> None:
        self.store = store
        self.accounts = accounts
        self.sealer = sealer

    # -- authorizations: the user's API keys ------------------------------------------------
    def _authorization(
        self, row: ApiKey, user: UserView, token: str | None = None
    ) -> AuthorizationView:
        expires = None
        if row.description == SESSION_KEY:
            left = row.created_at + dt.timedelta(seconds=SESSION_TTL) - utcnow()
            expires = max(0, int(left.total_seconds()))
        return AuthorizationView(
            row.id, row.description, user, row.created_at, row.updated_at, token, expires
        )

    def _key_row(
        self, user: UserView, identity: str, session: bool, current_key: str | None = None
    ) -> ApiKey:
        """By id; `~` is the key this request came with (Heroku's current authorization or
        session)."""
        what = "session" if session else "authorization"
        with self.store.session() as s:
            if identity == "~" and current_key:
                row = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(current_key)))
            else:
                row = s.get(ApiKey, identity)
            if row is None or row.user_id != user.id or (row.description == SESSION_KEY) != session:
                raise NotFound(f"Couldn't find that {what} ({identity}).", resource=what)
            s.expunge(row)
            return row

    def authorizations(self, user: UserView) -> list[AuthorizationView]:
        with self.store.session() as s:
            rows = s.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user.id, ApiKey.description != SESSION_KEY)
                .order_by(ApiKey.created_at)
            ).all()
            return [self._authorization(r, user) for r in rows]

    def authorization(
        self, user: UserView, identity: str, current_key: str | None = None
    ) -> AuthorizationView:
        row = self._key_row(user, identity, False, current_key)
        # `~` answers with the key the client itself sent: nothing it does not know
        return self._authorization(row, user, current_key if identity == "~" else None)

    def create_authorization(
        self, user: UserView, description: object, expires_in: object = None
    ) -> AuthorizationView:
        if expires_in not in (None, ""):
            # Spruce's keys do not expire; refusing says so rather than ignoring it
            raise InvalidParams("Spruce's authorizations do not expire: leave out expires_in.")
        text = _text(description, "description") or "created with authorizations:create"
        if text == SESSION_KEY:
            raise InvalidParams(f"{SESSION_KEY!r} is the description of dashboard sessions.")
        token = generate_key()
        with self.store.session() as s:
            row = ApiKey(user_id=user.id, key_hash=hash_key(token), description=text)
            s.add(row)
            s.flush()
            return self._authorization(row, user, token)

    def update_authorization(
        self, user: UserView, identity: str, description: object
    ) -> AuthorizationView:
        text = _text(description, "description", required=True)
        self._key_row(user, identity, False)
        with self.store.session() as s:
            row = s.get(ApiKey, identity)
            assert row is not None
            row.description = text
            s.flush()
            return self._authorization(row, user)

    def regenerate(self, user: UserView, identity: str) -> AuthorizationView:
        """A new token for the authorization; the old one stops working at once."""
        self._key_row(user, identity, False)
        token = generate_key()
        with self.store.session() as s:
            row = s.get(ApiKey, identity)
            assert row is not None
            row.key_hash = hash_key(token)
            s.flush()
            view = self._authorization(row, user, token)
        self.accounts.forget_keys()
        return view

    def revoke(self, user: UserView, identity: str) -> AuthorizationView:
        row = self._key_row(user, identity, False)
        with self.store.session() as s:
            left = s.scalars(
                select(ApiKey.id).where(
                    ApiKey.user_id == user.id, ApiKey.description != SESSION_KEY
                )
            ).all()
            if list(left) == [identity]:
                raise InvalidParams(
                    "This is your last authorization: create another before revoking it."
                )
            found = s.get(ApiKey, identity)
            if found is not None:
                s.delete(found)
        self.accounts.forget_keys()
        return self._authorization(row, user)

    # -- sessions: dashboard sign-ins -------------------------------------------------------
    def sessions(self, user: UserView) -> list[AuthorizationView]:
        cutoff = utcnow() - dt.timedelta(seconds=SESSION_TTL)
        with self.store.session() as s:
            rows = s.scalars(
                select(ApiKey)
                .where(
                    ApiKey.user_id == user.id,
                    ApiKey.description == SESSION_KEY,
                    ApiKey.created_at >= cutoff,
                )
                .order_by(ApiKey.created_at)
            ).all()
            return [self._authorization(r, user) for r in rows]

    def end_session(
        self, user: UserView, identity: str, current_key: str | None = None
    ) -> AuthorizationView:
        row = self._key_row(user, identity, True, current_key)
        with self.store.session() as s:
            found = s.get(ApiKey, identity)
            if found is not None:
                s.delete(found)
        self.accounts.forget_keys()
        return self._authorization(row, user)

    # -- OAuth clients ----------------------------------------------------------------------
    def _client(self, row: OAuthClient) -> OAuthClientView:
        secret = self.sealer.open(row.secret_sealed)
        return OAuthClientView(
            row.id, row.name, row.redirect_uri, secret, row.created_at, row.updated_at
        )

    @staticmethod
    def _redirect(value: object) -> str:
        uri = _text(value, "redirect_uri", limit=2000, required=True)
        if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            raise InvalidParams("redirect_uri must use https (or be on localhost).")
        return uri

    @staticmethod
    def _client_row(s: Session, user: UserView, identity: str) -> OAuthClient:
        row = s.get(OAuthClient, identity)
        if row is None or row.user_id != user.id:
            raise NotFound(f"Couldn't find that OAuth client ({identity}).")
        return row

    def clients(self, user: UserView) -> list[OAuthClientView]:
        with self.store.session() as s:
            rows = s.scalars(
                select(OAuthClient)
                .where(OAuthClient.user_id == user.id)
                .order_by(OAuthClient.created_at)
            ).all()
            return [self._client(r) for r in rows]

    def client(self, user: UserView, identity: str) -> OAuthClientView:
        with self.store.session() as s:
            return self._client(self._client_row(s, user, identity))

    def create_client(self, user: UserView, name: object, redirect_uri: object) -> OAuthClientView:
        text = _text(name, "name", required=True)
        uri = self._redirect(redirect_uri)
        with self.store.session() as s:
            row = OAuthClient(
                user_id=user.id,
                name=text,
                redirect_uri=uri,
                secret_sealed=self.sealer.seal(secrets.token_urlsafe(32)),
            )
            s.add(row)
            s.flush()
            return self._client(row)

    def update_client(
        self, user: UserView, identity: str, name: object, redirect_uri: object
    ) -> OAuthClientView:
        with self.store.session() as s:
            row = self._client_row(s, user, identity)
            if name is not None:
                row.name = _text(name, "name", required=True)
            if redirect_uri is not None:
                row.redirect_uri = self._redirect(redirect_uri)
            s.flush()
            return self._client(row)

    def rotate_client(self, user: UserView, identity: str) -> OAuthClientView:
        with self.store.session() as s:
            row = self._client_row(s, user, identity)
            row.secret_sealed = self.sealer.seal(secrets.token_urlsafe(32))
            s.flush()
            return self._client(row)

    def delete_client(self, user: UserView, identity: str) -> OAuthClientView:
        with self.store.session() as s:
            row = self._client_row(s, user, identity)
            view = self._client(row)
            s.delete(row)
            return view

    # -- SSH keys ---------------------------------------------------------------------------
    @staticmethod
    def _ssh(row: SshKey, email: str) -> SshKeyView:
        return SshKeyView(
            row.id,
            email,
            row.public_key,
            row.fingerprint,
            row.comment,
            row.created_at,
            row.updated_at,
        )

    def ssh_keys(self, user: UserView) -> list[SshKeyView]:
        with self.store.session() as s:
            rows = s.scalars(
                select(SshKey).where(SshKey.user_id == user.id).order_by(SshKey.created_at)
            ).all()
            return [self._ssh(r, user.email) for r in rows]

    def ssh_key(self, user: UserView, identity: str) -> SshKeyView:
        for key in self.ssh_keys(user):
            if identity in (key.id, key.fingerprint, key.public_key, key.comment):
                return key
        raise NotFound(f"Couldn't find that SSH key ({identity}).")

    def add_ssh_key(self, user: UserView, public_key: object) -> SshKeyView:
        line, fingerprint, comment = parse_public_key(public_key)
        with self.store.session() as s:
            if s.scalar(
                select(SshKey.id).where(
                    SshKey.user_id == user.id, SshKey.fingerprint == fingerprint
                )
            ):
                raise InvalidParams("This key is already in use by your account.")
            row = SshKey(user_id=user.id, public_key=line, fingerprint=fingerprint, comment=comment)
            s.add(row)
            s.flush()
            return self._ssh(row, user.email)

    def remove_ssh_key(self, user: UserView, identity: str) -> SshKeyView:
        key = self.ssh_key(user, identity)
        with self.store.session() as s:
            row = s.get(SshKey, key.id)
            if row is not None:
                s.delete(row)
        return key
