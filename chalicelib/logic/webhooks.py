"""Webhook events are recorded durably once; processing them is the consumer's (points, orders)."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.clock import Clock, SystemClock, epoch, iso
from chalicelib.dal.requests import RequestsRepo
from chalicelib.models.api import GenericWebhookEvent
from chalicelib.models.domain import App

# Providers retry for up to a few days; keep every event id longer than any retry window.
EVENT_RETENTION = timedelta(days=30)


def record(
    app: App,
    provider: str,
    channel: str,
    event: GenericWebhookEvent,
    raw: bytes,
    repo: RequestsRepo | None = None,
    clock: Clock | None = None,
) -> bool:
    """True when the event is new, False for a replay of one already recorded."""
    now = (clock or SystemClock()).now()
    return (repo or RequestsRepo()).record_webhook_event(
        app.app_id,
        f"{channel}:{provider}",
        event.id,
        event.type,
        raw.decode("utf-8", "replace"),
        iso(now),
        expires_at=epoch(now + EVENT_RETENTION),
    )
