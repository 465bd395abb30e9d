"""Users, API keys, authentication and rate limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from spruce.store.db import Store
from spruce.store.models import ApiKey, User, utcnow

from .apps import user_view
from .errors import InvalidParams, NotFound, RateLimited, Unauthorized
from .shared import SharedLimits
from .views import UserView

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Heroku's budget: 4500 requests an hour per account, refilled continuously.
RATE_LIMIT = 4500
RATE_WINDOW = 3600.0
SESSION_KEY = "dashboard session"  # the description of a dashboard session's own key
SESSION_TTL = 12 * 3600


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    # Heroku keys look like "HRKU-" + a UUID-ish token; keep the prefix so scanners find them.
    return "HRKU-" + secrets.token_urlsafe(32)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """A token bucket per user; in memory (a restart refills every bucket)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.rate = limit / window
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refill(self, user_id: str) -> _Bucket:
        now = time.monotonic()
        b = self._buckets.get(user_id)
        if b is None:
            b = self._buckets[user_id] = _Bucket(float(self.limit), now)
        b.tokens = min(float(self.limit), b.tokens + (now - b.stamp) * self.rate)
        b.stamp = now
        return b

    def take(self, user_id: str) -> int:
        with self._lock:
            b = self._refill(user_id)
            if b.tokens < 1:
                raise RateLimited(
                    "Your account reached the API rate limit. Please wait a few minutes before making new requests."
                )
            b.tokens -= 1
            return int(b.tokens)

    def remaining(self, user_id: str) -> int:
        with self._lock:
            return int(self._refill(user_id).tokens)


KEY_CACHE_SECONDS = 5.0  # how long a verified key is trusted without the store


class Accounts:
    def __init__(
        self, store: Store, shared: SharedLimits | None = None, rate_limit: int = RATE_LIMIT
    ) -> None:
        """`shared`: with several API processes, the rate limits and key epoch they share
        (its own limit then applies)."""
        self.store = store
        self.rate_limiter: RateLimiter | SharedLimits = shared or RateLimiter(rate_limit)
        self._shared = shared
        self._epoch = shared.key_epoch() if shared else 0
        # Every API call authenticates: a verified key is remembered briefly (by its hash,
        # never in clear), so a busy client costs no store round trip per request.
        self._verified: dict[str, tuple[float, UserView]] = {}
        self._verified_lock = threading.Lock()

    def create_user(
        self, email: str, name: str | None = None, operator: bool = False
    ) -> tuple[UserView, str]:
        """Create a user and its first API key; returns the key in clear, once."""
        email = email.strip().lower()
        if not EMAIL_RE.match(email):
            raise InvalidParams(f"{email!r} is not a valid email address.")
        with self.store.session() as s:
            if s.scalar(select(User).where(User.email == email)):
                raise InvalidParams(f"A user with email {email} already exists.")
            user = User(email=email, name=name, is_operator=operator)
            s.add(user)
            s.flush()
            key = generate_key()
            s.add(
                ApiKey(user_id=user.id, key_hash=hash_key(key), description="created with the user")
            )
            view = user_view(user)
        return view, key

    def create_key(self, user_id: str, description: str = "") -> str:
        key = generate_key()
        with self.store.session() as s:
            s.add(ApiKey(user_id=user_id, key_hash=hash_key(key), description=description))
        return key

    def verified(self, key: str) -> UserView | None:
        """The key's user if the key was verified in the last KEY_CACHE_SECONDS, else None
        (then `authenticate`, which reads the store). Never touches the store: callers on
        an event loop use it to skip a thread hop."""
        if not key:
            return None
        digest = hash_key(key)
        self._follow_epoch()
        with self._verified_lock:
            hit = self._verified.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def _follow_epoch(self) -> int:
        """Drop remembered keys when another API process changed keys or users; returns
        the epoch seen."""
        if self._shared is None:
            return 0
        epoch = self._shared.key_epoch()
        if epoch != self._epoch:
            with self._verified_lock:
                self._verified.clear()
                self._epoch = epoch
        return epoch

    def authenticate(self, key: str) -> UserView:
        if not key:
            raise Unauthorized("Invalid credentials provided.")
        digest = hash_key(key)
        now = time.monotonic()
        epoch = self._follow_epoch()
        with self._verified_lock:
            hit = self._verified.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.store.session() as s:
            found = s.execute(
                select(User)
                .join(ApiKey, ApiKey.user_id == User.id)
                .where(ApiKey.key_hash == digest)
            ).scalar()
            if found is None:
                raise Unauthorized("Invalid credentials provided.")
            user = user_view(found)
        with self._verified_lock:
            if len(self._verified) > 10000:
                self._verified.clear()
            # a key revoked while it was read (the epoch moved) is not remembered
            if self._shared is None or self._shared.key_epoch() == epoch:
                self._verified[digest] = (now + KEY_CACHE_SECONDS, user)
        return user

    # -- dashboard sessions: a key of their own, so signing out ends exactly that session --
    def start_session(self, api_key: str) -> tuple[UserView, str]:
        """Sign in with an API key: a new key for this session only (the user's own key is
        never kept in the browser). Sessions past SESSION_TTL are removed here too."""
        user = self.authenticate(api_key.strip())
        cutoff = utcnow() - dt.timedelta(seconds=SESSION_TTL)
        with self.store.session() as s:
            s.execute(
                delete(ApiKey).where(ApiKey.description == SESSION_KEY, ApiKey.created_at < cutoff)
            )
        self.forget_keys()
        self.touch_login(user.id)
        return user, self.create_key(user.id, SESSION_KEY)

    def session_user(self, session_key: str) -> UserView:
        """The user of a live dashboard session (Unauthorized when it ended or expired)."""
        if not session_key:
            raise Unauthorized("Your session has ended. Sign in again.")
        with self.store.session() as s:
            row = s.execute(
                select(ApiKey, User)
                .join(User, ApiKey.user_id == User.id)
                .where(ApiKey.key_hash == hash_key(session_key))
            ).first()
            if (
                row is None
                or row[0].description != SESSION_KEY
                or row[0].created_at < utcnow() - dt.timedelta(seconds=SESSION_TTL)
            ):
                raise Unauthorized("Your session has ended. Sign in again.")
            return user_view(row[1])

    def end_session(self, session_key: str) -> None:
        with self.store.session() as s:
            s.execute(
                delete(ApiKey).where(
                    ApiKey.key_hash == hash_key(session_key), ApiKey.description == SESSION_KEY
                )
            )
        self.forget_keys()

    def forget_keys(self) -> None:
        """Drop every remembered key (after keys or users change), in every API process."""
        with self._verified_lock:
            self._verified.clear()
        if self._shared is not None:
            self._shared.bump_key_epoch()

    def get(self, user_id: str) -> UserView:
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("Couldn't find that user.")
            return user_view(user)

    def find(self, identity: str) -> UserView:
        """A user by id or email (collaborator and access commands name users by email)."""
        with self.store.session() as s:
            user = s.get(User, identity) or s.scalar(
                select(User).where(User.email == identity.strip().lower())
            )
            if user is None:
                raise NotFound(f"Couldn't find that user ({identity}).")
            return user_view(user)

    def list_users(self) -> list[UserView]:
        with self.store.session() as s:
            return [user_view(u) for u in s.scalars(select(User).order_by(User.created_at))]

    def first_operator(self) -> UserView | None:
        with self.store.session() as s:
            u = s.scalar(select(User).where(User.is_operator.is_(True)).order_by(User.created_at))
            return user_view(u) if u else None

    def touch_login(self, user_id: str) -> None:
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is not None:
                user.last_login = utcnow()

    def update(self, user_id: str, name: object) -> UserView:
        if name is not None and (not isinstance(name, str) or len(name) > 255):
            raise InvalidParams("name must be a string of at most 255 characters.")
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("Couldn't find that user.")
            if name is not None:
                user.name = name
            s.flush()
            view = user_view(user)
        self.forget_keys()
        return view
