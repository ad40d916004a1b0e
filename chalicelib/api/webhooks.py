"""Payment and ad platform webhooks: signature verified before the body is parsed; replays apply nothing."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.http import Api, current_app_caller, ok, parse_body, raw_body
from chalicelib.auth import WEBHOOK
from chalicelib.logic import webhooks
from chalicelib.models.api import GenericWebhookEvent, WebhookReceipt

hooks = Api(__name__, tag="webhooks")


@hooks.endpoint(
    "/v1/webhooks/payments/{provider}/{app_id}",
    methods=("POST",),
    auth=WEBHOOK,
    body=GenericWebhookEvent,
    response=WebhookReceipt,
    summary="Payment events (paid / refunded)",
    errors=(400, 401, 404),
)
def payment_event(provider: str, app_id: str) -> Response:
    event = parse_body(GenericWebhookEvent)
    duplicate = not webhooks.record(current_app_caller().app, provider, "payments", event, raw_body())
    return ok(WebhookReceipt(duplicate=duplicate))


@hooks.endpoint(
    "/v1/webhooks/ads/{provider}/{app_id}",
    methods=("POST",),
    auth=WEBHOOK,
    body=GenericWebhookEvent,
    response=WebhookReceipt,
    summary="Ad events (completed / clicked / exposed)",
    errors=(400, 401, 404),
)
def ad_event(provider: str, app_id: str) -> Response:
    event = parse_body(GenericWebhookEvent)
    duplicate = not webhooks.record(current_app_caller().app, provider, "ads", event, raw_body())
    return ok(WebhookReceipt(duplicate=duplicate))
