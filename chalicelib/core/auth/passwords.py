"""Slow salted password hashes (scrypt, from the standard library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_R, _P, _DKLEN = 8, 1, 32


def hash_password(password: str, *, n: int) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_R, p=_P, dklen=_DKLEN, maxmem=128 * n * _R * 2)
    return f"scrypt${n}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str | None, *, n: int) -> bool:
    """Constant-time check. With no stored hash it still spends the same time (no user enumeration)."""
    if not encoded:
        hash_password(password, n=n)
        return False
    try:
        scheme, n_text, salt_b64, digest_b64 = encoded.split("$")
        stored_n = int(n_text)
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(password.encode(), salt=salt, n=stored_n, r=_R, p=_P, dklen=len(expected), maxmem=128 * stored_n * _R * 2)
    return hmac.compare_digest(actual, expected)
