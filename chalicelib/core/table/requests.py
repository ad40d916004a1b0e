"""Replay protection: server-call nonces and received webhook events."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib.core.table import keys
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import NonceItem, WebhookEventItem


class RequestsRepo:
    def use_nonce(self, app_id: str, nonce: str, expires_at: int) -> bool:
        """True the first time a nonce is seen; False for a replay. The item expires by TTL."""
        item = NonceItem(PK=keys.nonce_pk(app_id, nonce), SK=keys.NONCE_SK, kind="nonce", ttl=expires_at)
        try:
            item.save(condition=NonceItem.PK.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def record_webhook_event(
        self,
        app_id: str,
        provider: str,
        event_id: str,
        event_type: str,
        body: str,
        received_at: str,
        expires_at: int,
    ) -> bool:
        """Durably record an event once; False when it was already recorded (a provider retry)."""
        item = WebhookEventItem(
            PK=keys.webhook_event_pk(app_id, provider, event_id),
            SK=keys.WEBHOOK_EVENT_SK,
            kind="webhook_event",
            app_id=app_id,
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            body=body,
            received_at=received_at,
            ttl=expires_at,
        )
        try:
            item.save(condition=WebhookEventItem.PK.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True
