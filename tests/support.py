"""What a tenant's backend or a provider does to call Jifen: sign requests, make login tokens."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import jwt

from chalicelib.core.auth.signatures import sign_server_request, sign_webhook


def login_token(login_secret: str, openid: str, *, lifetime: int = 300, iat: int | None = None, **claims: Any) -> str:
    now = int(time.time()) if iat is None else iat
    return jwt.encode({"sub": openid, "aud": "jifen", "iat": now, "exp": now + lifetime, **claims}, login_secret, algorithm="HS256")


def server_headers(
    app_id: str, server_key: str, method: str, path: str, body: bytes = b"", *, timestamp: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(12)
    return {
        "content-type": "application/json",
        "X-Jifen-App": app_id,
        "X-Jifen-Timestamp": ts,
        "X-Jifen-Nonce": nonce,
        "X-Jifen-Signature": sign_server_request(server_key, method, path, ts, nonce, body),
    }


def webhook_headers(webhook_secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"content-type": "application/json", "X-Jifen-Webhook-Signature": sign_webhook(webhook_secret, ts, body)}


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def post_upload(slot: dict[str, Any], content: bytes, filename: str = "receipt.jpg") -> Any:
    """Upload ``content`` the way a member's client does: a multipart POST of the slot's form fields, then the file."""
    import requests

    assert slot["method"] == "POST"
    return requests.post(slot["url"], data=slot["fields"], files={"file": (filename, content)}, timeout=10)


def upload_policy(slot: dict[str, Any]) -> dict[str, Any]:
    """The POST policy document a slot's form carries (what S3 checks the upload against)."""
    import base64

    policy: dict[str, Any] = json.loads(base64.b64decode(slot["fields"]["policy"]))
    return policy
