"""Image references (`host[:port]/repo[:tag][@sha256:...]`) and registry auth challenges."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_REPO = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ReferenceError(ValueError):
    """An image reference Spruce cannot use."""


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host or host:port; always explicit (there is no default registry here)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        raw = text.strip()
        for scheme in ("https://", "http://"):
            raw = raw.removeprefix(scheme)
        digest = None
        if "@" in raw:
            raw, digest = raw.split("@", 1)
            if not _DIGEST.match(digest):
                raise ReferenceError(f"{text!r}: the digest must be sha256:<64 hex digits>")
        host, sep, rest = raw.partition("/")
        if not sep or not ("." in host or ":" in host or host == "localhost"):
            raise ReferenceError(f"{text!r}: an image reference must start with a registry host")
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.match(tag):
                raise ReferenceError(f"{text!r}: invalid tag {tag!r}")
        if not _REPO.match(rest):
            raise ReferenceError(
                f"{text!r}: invalid repository name {rest!r} (lower-case letters, digits, "
                "separators . _ - and /)"
            )
        return cls(host, rest, tag, digest)

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when known, else the tag (default latest)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> ImageRef:
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def validate_repository(name: str) -> str:
    if not _REPO.match(name):
        raise ReferenceError(f"invalid repository name {name!r}")
    return name


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" | "bearer" (lower case)
    params: dict[str, str]


_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> Challenge:
    """Parse one WWW-Authenticate value, e.g. `Bearer realm="https://a/token",service="r"`."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params[match.group(1).lower()] = value
        pos = match.end()
    return Challenge(scheme.lower(), params)
