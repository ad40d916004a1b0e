"""Verifying a payment provider's webhook (WeChat Pay v3, Douyin) before anything in it is parsed.

Authentication (core) asks for this as the "payment_webhooks" service; it returns the verified event
and whether it is a genuine callback with nothing to apply, or None when the app has no such provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.payments import providers
from chalicelib.tasks.events import openid_lookup
from chalicelib.tenancy.models import App


def verify_payment_webhook(
    app: App, provider: str, headers: Mapping[str, str], body: bytes, now: int, window: int
) -> tuple[Any, bool] | None:
    from chalicelib.payments.adapter import DouyinConfig, UnsupportedEvent
    from chalicelib.payments.douyin import Douyin  # lazy: cryptography only when a provider webhook arrives (cold start)
    from chalicelib.payments.wechatpay import WechatPay

    config = providers.cached(app, provider)
    if config is None:
        return None
    lookup = openid_lookup(app)
    adapter = Douyin(config, lookup) if isinstance(config, DouyinConfig) else WechatPay(config, lookup)
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        return adapter.parse(lowered, body, now, window), False
    except UnsupportedEvent:
        return None, True
