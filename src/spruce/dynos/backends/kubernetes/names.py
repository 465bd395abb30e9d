"""Kubernetes names and labels for Heroku's objects (apps, process types, dynos)."""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
APP = "spruce.dev/app"
PROCESS_TYPE = "spruce.dev/process-type"
DYNO = "spruce.dev/dyno"
ONE_OFF = "spruce.dev/one-off"
ATTACHED = "spruce.dev/attached"
# Annotations (values may be any string).
APP_ID = "spruce.dev/app-id"
RELEASE_ID = "spruce.dev/release-id"
RELEASE_VERSION = "spruce.dev/release-version"
SIZE = "spruce.dev/size"
COMMAND = "spruce.dev/command"
PORT = "spruce.dev/port"
SPEC_HASH = "spruce.dev/spec-hash"
RESTARTED_AT = "spruce.dev/restarted-at"
SLEEPING = "spruce.dev/sleeping"
CONFIG_SECRET = "spruce.dev/config-secret"
FIR_HASH = "spruce.dev/fir-hash"
"""A Fir image's dynos: the template hash of their Fir names (`web-<hash>-<5 chars>`)."""

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def _digest(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def dns_label(text: str, max_len: int) -> str:
    """A DNS-1123 label part made from text; a short digest keeps lossy ones distinct."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if clean != text or len(clean) > max_len:
        clean = f"{clean[: max_len - 7].strip('-')}-{_digest(text)}".strip("-")
    return clean or _digest(text)


def label_value(text: str) -> str:
    """Text as a label value (63 characters of [A-Za-z0-9._-]); a digest when it is not one."""
    return text if _LABEL_VALUE.match(text) else "h-" + _digest(text, 32)


def app_labels(app_id: str) -> dict[str, str]:
    return {MANAGED_BY: "spruce", APP: label_value(app_id)}


def app_selector(app_id: str) -> str:
    return f"{MANAGED_BY}=spruce,{APP}={label_value(app_id)}"


def object_name(app_name: str, process_type: str, suffix: str) -> str:
    """`myapp-web-1`: at most 52 characters, so that the ReplicaSet and pod suffixes fit."""
    return f"{dns_label(app_name, 24)}-{dns_label(process_type, 20)}-{suffix}"


# Kubernetes' own alphabet for generated name suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fir_name(process_type: str, fir_hash: str, pod_name: str) -> str:
    """A Fir dyno's name from its pod: `web-848cd4f64d-pvpr2`, the last five characters
    being the pod's own (the ReplicaSet's random suffix, as on Heroku's Fir)."""
    return f"{process_type}-{fir_hash}-{pod_name.rsplit('-', 1)[-1][-5:]}"


def stand_in_suffix(text: str) -> str:
    """Five suffix characters derived from text, for a Fir dyno with no pod (yet)."""
    n = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    out = []
    for _ in range(5):
        n, r = divmod(n, len(_SUFFIX_ALPHABET))
        out.append(_SUFFIX_ALPHABET[r])
    return "".join(out)


def dyno_label(dyno_name: str) -> str:
    """`web.1` is a valid label value already; process types are [a-zA-Z0-9_-]."""
    return label_value(dyno_name)
