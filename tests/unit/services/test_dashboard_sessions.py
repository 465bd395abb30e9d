"""Dashboard sessions: a key of their own, ended by signing out or by age."""

from __future__ import annotations

import datetime as dt

import pytest
from service_fakes import Harness
from sqlalchemy import update

from spruce.services.accounts import SESSION_KEY, SESSION_TTL, hash_key
from spruce.services.errors import Unauthorized
from spruce.store.models import ApiKey


def test_a_session_has_its_own_key_and_ends_on_sign_out(harness: Harness) -> None:
    accounts = harness.services.accounts
    user, key = accounts.create_user("dash@example.com")
    signed_in, session = accounts.start_session(key)
    assert signed_in.id == user.id and session != key
    assert accounts.session_user(session).id == user.id
    with pytest.raises(Unauthorized):
        accounts.session_user(key)  # the user's own key is not a dashboard session
    with pytest.raises(Unauthorized):
        accounts.start_session("HRKU-nope")
    accounts.end_session(session)
    with pytest.raises(Unauthorized):
        accounts.session_user(session)
    with pytest.raises(Unauthorized):
        accounts.authenticate(session)  # nor does it open the API any longer
    accounts.authenticate(key)  # signing out leaves the user's key alone


def test_old_sessions_expire_and_are_removed_at_the_next_sign_in(harness: Harness) -> None:
    accounts = harness.services.accounts
    _, key = accounts.create_user("old@example.com")
    _, session = accounts.start_session(key)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=SESSION_TTL + 60)
    with harness.services.store.session() as s:
        s.execute(update(ApiKey).where(ApiKey.key_hash == hash_key(session)).values(created_at=old))
    with pytest.raises(Unauthorized):
        accounts.session_user(session)
    accounts.start_session(key)
    with harness.services.store.session() as s:
        left = s.query(ApiKey).filter(ApiKey.key_hash == hash_key(session)).count()
        sessions = s.query(ApiKey).filter(ApiKey.description == SESSION_KEY).count()
    assert left == 0 and sessions == 1
