"""heroku-inference's provider rules: plans, the URL, keys kept hashed, rotation, revocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.addons.base import ProvisionError, UnknownPlanError
from spruce.addons.inference import STANDARD, InferenceProvider, key_hash, public_url
from spruce.certs.ca import InternalCA
from spruce.inference.platform_link import split_exit_status


def test_the_url_drops_port_443_as_the_plugin_needs() -> None:
    assert public_url(("127.0.0.3", 443)) == "https://127.0.0.3"
    assert public_url(("127.0.0.1", 8443)) == "https://127.0.0.1:8443"
    assert public_url(("::1", 443)) == "https://[::1]"


def test_the_rendezvous_exit_line_is_split_off() -> None:
    out, status = split_exit_status(b"a\nb\n\xef\xbf\xbf heroku-command-exit-status: 3\n")
    assert (out, status) == (b"a\nb\n", 3)
    assert split_exit_status(b"no marker") == (b"no marker", None)


@pytest.fixture
def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InferenceProvider:
    p = InferenceProvider(
        tmp_path, InternalCA(tmp_path / "ca"), listen=("127.0.0.1", 9443), link_path=tmp_path / "l"
    )

    async def no_server() -> None:  # the process is tested in tests/integration/inference
        return None

    monkeypatch.setattr(p, "_ensure_server", no_server)
    return p


def test_plans_are_the_catalogue_plus_standard(provider: InferenceProvider) -> None:
    names = [p.name for p in provider.plans]
    assert names == ["smollm2-135m-instruct", "all-minilm-l6-v2", STANDARD]
    assert provider.plan(None).name == "smollm2-135m-instruct"
    assert provider.plans[1].limits["type"] == "text-to-embedding"
    with pytest.raises(UnknownPlanError):
        provider.plan("gpt-9")


async def test_keys_are_kept_hashed_rotated_and_revoked(provider: InferenceProvider) -> None:
    values = await provider.provision("a1", "all-minilm-l6-v2")
    key = values["KEY"]
    assert values == {"URL": "https://127.0.0.1:9443", "KEY": key, "MODEL_ID": "all-minilm-l6-v2"}
    state = (provider.root / "state.json").read_text()
    assert key not in state and key_hash(key) in state
    found = provider.grant(key)
    assert found is not None and found[0] == "a1"
    assert provider.grant(key + "x") is None
    new = (await provider.reset_credentials("a1"))["KEY"]
    assert new != key and provider.grant(key) is None and provider.grant(new) is not None
    assert "KEY" not in provider.config("a1")  # never kept, never shown again
    await provider.deprovision("a1")
    assert provider.grant(new) is None


async def test_standard_has_no_model_id_and_usage_adds_up(provider: InferenceProvider) -> None:
    values = await provider.provision("s1", STANDARD)
    assert "MODEL_ID" not in values and provider.model_id("s1") is None
    provider.record_usage("s1", "chat", prompt_tokens=5, completion_tokens=7)
    provider.record_usage("s1", "chat", prompt_tokens=1, completion_tokens=1, tool_calls=2)
    assert provider.usage("s1")["chat"] == {
        "requests": 2,
        "prompt_tokens": 6,
        "completion_tokens": 8,
        "tool_calls": 2,
    }
    assert any(label == "Usage (chat)" for label, _ in await provider.info("s1"))
    with pytest.raises(ProvisionError):
        await provider.provision("s1", STANDARD)
    with pytest.raises(ProvisionError):
        await provider.change_plan("s1", "all-minilm-l6-v2")
