"""A user's credentials: authorizations are API keys, sessions are dashboard sign-ins,
OAuth clients keep a sealed secret, SSH keys are checked and fingerprinted; account
features set app features on new apps."""

from __future__ import annotations

import base64
import hashlib

import pytest
from service_fakes import Harness

from spruce.services.errors import Forbidden, InvalidParams, NotFound, Unauthorized
from spruce.services.oauth import parse_public_key
from spruce.services.views import UserView


def _ed25519_line(comment: str = "me@laptop") -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    )
    return f"{raw.decode()} {comment}"


def test_authorizations_are_api_keys(harness: Harness, owner: UserView) -> None:
    creds = harness.services.credentials
    accounts = harness.services.accounts
    first = creds.authorizations(owner)
    assert [a.description for a in first] == ["created with the user"]
    assert first[0].token is None  # keys are kept hashed: never shown again
    made = creds.create_authorization(owner, "for CI")
    assert made.token and accounts.authenticate(made.token).id == owner.id
    rotated = creds.regenerate(owner, made.id)
    assert rotated.token and rotated.token != made.token
    with pytest.raises(Unauthorized):
        accounts.authenticate(made.token)
    assert accounts.authenticate(rotated.token).id == owner.id
    assert creds.update_authorization(owner, made.id, "deploys").description == "deploys"
    creds.revoke(owner, made.id)
    with pytest.raises(Unauthorized):
        accounts.authenticate(rotated.token)
    with pytest.raises(InvalidParams, match="last authorization"):
        creds.revoke(owner, first[0].id)
    with pytest.raises(InvalidParams, match="do not expire"):
        creds.create_authorization(owner, "x", expires_in="3600")


def test_authorizations_and_sessions_are_per_user(
    harness: Harness, owner: UserView, other: UserView
) -> None:
    creds = harness.services.credentials
    mine = creds.authorizations(owner)[0]
    with pytest.raises(NotFound):
        creds.authorization(other, mine.id)
    with pytest.raises(NotFound):
        creds.revoke(other, mine.id)
    key = creds.create_authorization(owner, "signing in").token
    assert key is not None
    user, session_key = harness.services.accounts.start_session(key)
    sessions = creds.sessions(owner)
    assert len(sessions) == 1 and sessions[0].expires_in
    assert creds.sessions(other) == []
    # a session is not an authorization, and ending it signs the dashboard out
    assert sessions[0].id not in [a.id for a in creds.authorizations(owner)]
    creds.end_session(owner, sessions[0].id)
    with pytest.raises(Unauthorized):
        harness.services.accounts.session_user(session_key)


def test_oauth_clients(harness: Harness, owner: UserView, other: UserView) -> None:
    creds = harness.services.credentials
    c = creds.create_client(owner, "my app", "https://example.com/auth/callback")
    assert len(c.secret) > 30
    assert creds.client(owner, c.id).secret == c.secret
    with pytest.raises(NotFound):
        creds.client(other, c.id)
    assert creds.rotate_client(owner, c.id).secret != c.secret
    assert creds.update_client(owner, c.id, "renamed", None).name == "renamed"
    with pytest.raises(InvalidParams, match="https"):
        creds.create_client(owner, "x", "http://example.com/cb")
    creds.delete_client(owner, c.id)
    assert creds.clients(owner) == []


def test_ssh_keys(harness: Harness, owner: UserView, other: UserView) -> None:
    creds = harness.services.credentials
    line = _ed25519_line()
    key = creds.add_ssh_key(owner, line + "\n")
    blob = base64.b64decode(line.split()[1])
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert key.fingerprint == expected and key.comment == "me@laptop"
    with pytest.raises(InvalidParams, match="already in use"):
        creds.add_ssh_key(owner, line)
    assert creds.ssh_keys(other) == []
    assert creds.ssh_key(owner, key.fingerprint).id == key.id
    creds.remove_ssh_key(owner, key.fingerprint)
    assert creds.ssh_keys(owner) == []
    for bad in ("", "ssh-rsa", "ssh-ed25519 not-base64!", "ssh-rsa " + line.split()[1]):
        with pytest.raises(InvalidParams):
            parse_public_key(bad)


def test_account_features_set_new_apps_features(harness: Harness, owner: UserView) -> None:
    services = harness.services
    names = [f.info.name for f in services.features.account.list(owner)]
    assert names == ["dyno-metadata-on-new-apps", "log-runtime-metrics-on-new-apps"]
    services.features.account.update(owner, "dyno-metadata-on-new-apps", True)
    app = services.apps.create(owner)
    assert services.features.enabled(app.id) == {"runtime-dyno-metadata"}
    services.features.account.update(owner, "dyno-metadata-on-new-apps", 0)
    assert services.features.enabled(services.apps.create(owner).id) == set()
    with pytest.raises(InvalidParams):
        services.features.account.update(owner, "dyno-metadata-on-new-apps", "yes")
    with pytest.raises(NotFound):
        services.features.account.get(owner, "nope")


def test_app_transfers(harness: Harness, owner: UserView, other: UserView) -> None:
    services = harness.services
    app = services.apps.create(owner, "gift")
    transfers = services.app_transfers
    with pytest.raises(InvalidParams, match="already owns"):
        transfers.create(owner, "gift", owner.email)
    t = transfers.create(owner, "gift", other.email)
    assert t.state == "pending" and t.recipient.name == other.email
    assert [x.id for x in transfers.list(other)] == [t.id]
    with pytest.raises(Forbidden):
        transfers.update(owner, t.id, "accepted")  # only the recipient accepts
    assert transfers.update(other, t.id, "accepted").state == "accepted"
    assert services.apps.get(other, "gift").owner_id == other.id
    # the previous owner stays as a collaborator
    assert owner.email in [c.email for c in services.collaborators.list(other, app.id)]
    with pytest.raises(InvalidParams, match="already accepted"):
        transfers.update(other, t.id, "declined")
    back = transfers.create(other, "gift", owner.email)
    transfers.delete(other, back.id)
    assert [x.state for x in transfers.list(owner)] == ["accepted"]
