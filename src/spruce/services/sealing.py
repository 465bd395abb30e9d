"""Secrets kept in the store encrypted at rest, with a key that stays in the platform home.

ACM's account key, its order records (each holds a certificate's private key) and the
private keys of its certificates are sealed before they reach the store, so a copy of the
database (a backup, a PostgreSQL replica) gives none of them away without the home's key
file (`seal.key`, 0600, made on first use). Fernet: AES-128-CBC with HMAC-SHA256.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "seal.key"


class SealBroken(ValueError):
    """A sealed value this key cannot open (another home's key, or a damaged value)."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def in_home(cls, home: Path) -> Sealer:
        """The home's key, made (0600) the first time."""
        path = Path(home) / KEY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SealBroken(
                f"a sealed value cannot be opened with this home's {KEY_FILE}"
            ) from None
