"""API keys: `ck_<key_id>_<secret>`, stored as a salted hash and checked in constant time.

The key id is looked up first (an index hit), then one hash is compared, so authentication costs
one hash whatever the number of keys. The secret is 256 random bits, so a slow password hash
would buy nothing against guessing (there is nothing to guess) and cost every request tens of
milliseconds; a salted PBKDF2 with few rounds keeps a leaked table from being matched against
keys seen elsewhere, and keeps the stored form upgradeable (the scheme and rounds are stored).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "ck"
_SCHEME = "pbkdf2_sha256"
_ROUNDS = 1000
# A well-formed hash compared when the key id is unknown, so a miss takes as long as a hit.
_DUMMY = f"{_SCHEME}${_ROUNDS}${'00' * 16}${'00' * 32}"


def new_key_id() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def format_token(key_id: str, secret: str) -> str:
    """What the user sends as `Authorization: Bearer ...`."""
    return f"{PREFIX}_{key_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """(key_id, secret), or None when `token` is not of our form. The secret may hold `_`."""
    prefix, sep, rest = token.strip().partition("_")
    key_id, sep2, secret = rest.partition("_")
    if prefix != PREFIX or not sep or not sep2 or len(key_id) != 16 or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def hash_secret(secret: str, *, salt: bytes | None = None, rounds: int = _ROUNDS) -> str:
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, rounds)
    return f"{_SCHEME}${rounds}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check of `secret` against a stored hash; None (unknown key) is compared
    against a dummy, so the time does not tell whether the key id exists."""
    scheme, rounds, salt_hex, digest_hex = (stored or _DUMMY).split("$")
    if scheme != _SCHEME:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt_hex), int(rounds))
    return hmac.compare_digest(digest, bytes.fromhex(digest_hex)) and stored is not None
