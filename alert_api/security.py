"""Secrets of the alert API: API keys, officer passwords and sessions, webhook secrets.

- **Partner API keys** are ``sbk_<key id>_<secret>`` with 256 random bits in the
  secret. Only the SHA-256 of the whole key is stored (a fast hash is enough
  for a key with that much entropy); the key id finds the row, and the hashes
  are compared in constant time. The key is shown once, when it is made.
- **Officer session tokens** are ``sbs_<token id>_<secret>``, stored the same way.
- **Gateway keys** (field gateways that post readings) are ``sbg_<key id>_<secret>``,
  made and stored the same way as partner keys.
- **Officer passwords** are hashed with scrypt (N=2^14, r=8, p=1, 16-byte salt),
  which is memory-hard and in the standard library.
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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PARTNER_KEY_PREFIX = "sbk"
SESSION_PREFIX = "sbs"
GATEWAY_KEY_PREFIX = "sbg"
_PREFIXES = (PARTNER_KEY_PREFIX, SESSION_PREFIX, GATEWAY_KEY_PREFIX)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


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
    """``scrypt$n$r$p$salt$hash`` (base64) of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` result (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                                  n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


#: Compared against when a user name is unknown, so that a login takes as long either way.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))

__all__ = [
    "DUMMY_PASSWORD_HASH", "GATEWAY_KEY_PREFIX", "PARTNER_KEY_PREFIX", "SESSION_PREFIX", "hash_password", "hash_token",
    "new_api_key", "new_gateway_key", "new_session_token", "new_webhook_secret", "split_token", "token_matches", "verify_password",
]
