"""Identifiers: random where they name a new thing, derived where they name an existing identity."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def member_id_for(app_id: str, openid: str) -> str:
    """A member's id is derived from (app, openid): login and server calls find it without a lookup."""
    digest = hashlib.sha256(f"{app_id}\x00{openid}".encode()).digest()
    return "m_" + base64.b32encode(digest).decode().lower().rstrip("=")[:26]


def invite_code_for(member_id: str, length: int = 8) -> str:
    """A short code a member shares (40 bits); a longer one when the short one is taken."""
    digest = hashlib.sha256(f"invite\x00{member_id}".encode()).digest()
    return base64.b32encode(digest).decode()[:length]
