"""Webhook signing secrets encrypted at rest (AES-256-GCM), with a key file beside the store's configuration.

The API must sign with each partner's secret, so it cannot store only a hash.
It stores ``v1:`` + base64url(12-byte nonce + ciphertext + tag) instead, under a
256-bit key kept in ``<SUIBOU_HOME>/api/secrets.key`` (mode 0600, made on first
start). This keeps the secrets out of a copy of the database alone (a backup, a
dump, a PostgreSQL server or its backups on another machine, the SQLite file
copied elsewhere). It does not protect them from anyone who can read the API's
files as its user: the key is there too. Losing the key loses the secrets
(partners then rotate theirs with ``POST /v1/partner/webhook/rotate-secret``).

Examples:
    >>> box = SecretBox(bytes(32))
    >>> sealed = box.seal("whsec_" + "A" * 44)
    >>> sealed.startswith("v1:"), len(sealed) <= 128, box.open(sealed) == "whsec_" + "A" * 44
    (True, True, True)
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


class SecretBox:
    """Seals and opens short secrets with AES-256-GCM.

    Args:
        key: 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the secrets key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, text: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, text.encode(), None)
        return PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, value: str) -> str:
        """The secret in a :meth:`seal` result.

        Raises:
            ValueError: Not sealed, or not with this key.
        """
        if not is_sealed(value):
            raise ValueError("not a sealed secret")
        raw = value.removeprefix(PREFIX)
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        try:
            return self._aead.decrypt(data[:12], data[12:], None).decode()
        except Exception as error:  # cryptography's InvalidTag: another key, or a damaged value
            raise ValueError("the secret cannot be opened with this key") from error


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path`` (base64 of 32 bytes), made with mode 0600 if there is none yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return base64.b64decode(path.read_text().strip())
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(secrets.token_bytes(32)).decode())
    return base64.b64decode(path.read_text().strip())


__all__ = ["PREFIX", "SecretBox", "is_sealed", "load_or_create_key"]
