"""Server-to-server HMAC and generic webhook signatures (API.md), as pure functions."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from chalicelib.core.errors import Unauthorized

MIN_NONCE_LENGTH = 16
MAX_NONCE_LENGTH = 128


def server_string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def sign_server_request(key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = server_string_to_sign(method, path, timestamp, nonce, body)
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def check_timestamp(timestamp: str, now_epoch: int, window: int) -> int:
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Unauthorized("Timestamp is missing or not unix seconds")
    value = int(timestamp)
    if abs(now_epoch - value) > window:
        raise Unauthorized("Timestamp is outside the allowed window")
    return value


def verify_server_request(
    keys: Iterable[str],
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    signature: str,
    body: bytes,
    now_epoch: int,
    window: int,
) -> None:
    """Raises Unauthorized unless the request is signed by one of the keys and fresh. Nonce reuse is checked by the caller."""
    check_timestamp(timestamp, now_epoch, window)
    if not (MIN_NONCE_LENGTH <= len(nonce) <= MAX_NONCE_LENGTH) or not nonce.isascii() or not nonce.isprintable():
        raise Unauthorized(f"Nonce must be {MIN_NONCE_LENGTH}-{MAX_NONCE_LENGTH} printable characters")
    if not any(
        hmac.compare_digest(sign_server_request(key, method, path, timestamp, nonce, body).encode(), signature.lower().encode())
        for key in keys
    ):
        raise Unauthorized("Signature does not match")


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(secrets: Iterable[str], header: str, body: bytes, now_epoch: int, window: int) -> None:
    """``X-Jifen-Webhook-Signature: t=<unix seconds>,v1=<hex hmac>``; any listed v1 may match."""
    parts: dict[str, list[str]] = {}
    for piece in header.split(","):
        name, sep, value = piece.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    timestamps, macs = parts.get("t", []), parts.get("v1", [])
    if len(timestamps) != 1 or not macs:
        raise Unauthorized("Webhook signature header is malformed")
    check_timestamp(timestamps[0], now_epoch, window)
    for secret in secrets:
        expected = sign_webhook(secret, timestamps[0], body).split("v1=")[1]
        if any(hmac.compare_digest(expected.encode(), mac.lower().encode()) for mac in macs):
            return
    raise Unauthorized("Webhook signature does not match")
