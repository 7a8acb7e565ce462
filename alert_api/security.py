"""Secrets of the alert API: API keys, officer passwords and sessions, webhook secrets.

- **Partner API keys** are ``sbk_<key id>_<secret>`` with 256 random bits in the
  secret. Only the SHA-256 of the whole key is stored (a fast hash is enough
  for a key with that much entropy); the key id finds the row, and the hashes
  are compared in constant time. The key is shown once, when it is made.
- **Officer session tokens** are ``sbs_<token id>_<secret>``, stored the same way.
- **Gateway keys** (field gateways that post readings) are ``sbg_<key id>_<secret>``,
  made and stored the same way as partner keys.
- **Officer passwords** are hashed with Argon2id at OWASP's recommended minimum
  (m=19 MiB, t=2, p=1, 16-byte salt, 32-byte hash; ``argon2-cffi``). Argon2id is
  memory-hard like scrypt, but reaches that strength with 19 MiB per hash where
  scrypt needs 128 MiB (N=2^17, r=8), which matters when several logins hash at
  once. Hashes of the first API (scrypt, N=2^14) are still verified, and replaced
  by an Argon2id hash on the officer's next successful login
  (:func:`check_password` says when).
- **Webhook secrets** are ``whsec_`` + base64 of 32 random bytes, the form the
  Standard Webhooks libraries take.

Examples:
    >>> key_id, key, digest = new_api_key()
    >>> key.startswith(f"sbk_{key_id}_"), split_token(key) == ("sbk", key_id), token_matches(key, digest)
    (True, True, True)
    >>> token_matches(key + "x", digest)
    False
    >>> verify_password("correct horse battery", hash_password("correct horse battery"))
    True
    >>> check_password("correct horse battery", hash_password("correct horse battery"))
    (True, False)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

import argon2

PARTNER_KEY_PREFIX = "sbk"
SESSION_PREFIX = "sbs"
GATEWAY_KEY_PREFIX = "sbg"
_PREFIXES = (PARTNER_KEY_PREFIX, SESSION_PREFIX, GATEWAY_KEY_PREFIX)
#: Argon2id parameters: OWASP Password Storage Cheat Sheet, first recommendation (19 MiB, 2 passes, 1 lane).
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
_HASHER = argon2.PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                                parallelism=ARGON2_PARALLELISM, hash_len=32, salt_len=16, type=argon2.Type.ID)
#: Parameters of the first API's scrypt hashes, still verified (and upgraded on login).
_LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a high-entropy token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_token(token).encode(), stored_hash.encode())


def _new_token(prefix: str) -> tuple[str, str, str]:
    token_id = secrets.token_hex(8)
    token = f"{prefix}_{token_id}_{secrets.token_urlsafe(32)}"
    return token_id, token, hash_token(token)


def new_api_key() -> tuple[str, str, str]:
    """A new partner key: ``(key id, key, SHA-256 of the key)``."""
    return _new_token(PARTNER_KEY_PREFIX)


def new_session_token() -> tuple[str, str, str]:
    """A new officer session token: ``(token id, token, SHA-256 of the token)``."""
    return _new_token(SESSION_PREFIX)


def new_gateway_key() -> tuple[str, str, str]:
    """A new gateway key: ``(key id, key, SHA-256 of the key)``."""
    return _new_token(GATEWAY_KEY_PREFIX)


def split_token(token: str) -> tuple[str, str] | None:
    """``(prefix, id)`` of a key or session token, ``None`` if it is neither."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in _PREFIXES or len(parts[1]) != 16:
        return None
    if not all(c in "0123456789abcdef" for c in parts[1]):
        return None
    return parts[0], parts[1]


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def hash_password(password: str) -> str:
    """The Argon2id hash of a password, in the PHC string form (``$argon2id$v=19$m=19456,t=2,p=1$…``)."""
    return _HASHER.hash(password)


def legacy_scrypt_hash(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), the first API's form; only to test the upgrade."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_LEGACY_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_LEGACY_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def _check_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or (int(n), int(r), int(p)) != tuple(_LEGACY_SCRYPT.values()):
            return False  # only the first API's parameters: a forged row cannot ask for a huge hash
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                                  n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def check_password(password: str, stored: str) -> tuple[bool, bool]:
    """``(matches, needs upgrade)``: whether ``password`` matches ``stored``, and whether ``stored``
    should be replaced by :func:`hash_password` of it (an scrypt hash, or weaker Argon2 parameters)."""
    if stored.startswith("scrypt$"):
        return _check_scrypt(password, stored), True
    try:
        _HASHER.verify(stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False, False
    return True, _HASHER.check_needs_rehash(stored)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` (or first-API scrypt) hash."""
    return check_password(password, stored)[0]


@functools.cache
def dummy_password_hash() -> str:
    """Checked against when a user name is unknown, so that a login costs as much either way."""
    return hash_password(secrets.token_urlsafe(16))


__all__ = [
    "ARGON2_MEMORY_KIB", "ARGON2_PARALLELISM", "ARGON2_TIME_COST", "GATEWAY_KEY_PREFIX", "PARTNER_KEY_PREFIX",
    "SESSION_PREFIX", "check_password", "dummy_password_hash", "hash_password", "hash_token", "legacy_scrypt_hash",
    "new_api_key", "new_gateway_key", "new_session_token", "new_webhook_secret", "split_token", "token_matches",
    "verify_password",
]
