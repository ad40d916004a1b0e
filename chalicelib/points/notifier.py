"""Signed notifications from Jifen to a tenant's backend (expiry reminders), best effort.

Signed exactly like the generic webhooks tenants already verify: ``X-Jifen-Webhook-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, t + "." + body)>``. A failed delivery loses
nothing: the reminder stays in the outbox the tenant can poll.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Protocol

from chalicelib.core import outbound
from chalicelib.core.auth.signatures import sign_webhook


class TenantNotifier(Protocol):
    def send(self, url: str, secret: str, event: dict[str, Any]) -> bool:
        """True when the tenant answered 2xx."""


class HttpTenantNotifier:
    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout

    def send(self, url: str, secret: str, event: dict[str, Any]) -> bool:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "X-Jifen-Webhook-Signature": sign_webhook(secret, str(int(time.time())), body)}
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 (https enforced on the app)
        try:
            with outbound.opener().open(request, timeout=self.timeout) as response:
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, TimeoutError, ValueError):  # incl. outbound.RefusedTarget: a non-public address
            return False


class NoNotifier:
    def send(self, url: str, secret: str, event: dict[str, Any]) -> bool:
        return False
