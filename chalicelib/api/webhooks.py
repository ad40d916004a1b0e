"""Payment and ad platform webhooks: signature verified before the body is parsed; replays apply nothing."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.http import Api, current_app_caller, ok, parse_body, raw_body
from chalicelib.auth import WEBHOOK
from chalicelib.logic import webhooks
from chalicelib.models.api import GenericAdEvent, GenericPaymentEvent, WebhookReceipt

hooks = Api(__name__, tag="webhooks")


@hooks.endpoint(
    "/v1/webhooks/payments/{provider}/{app_id}",
    methods=("POST",),
    auth=WEBHOOK,
    body=GenericPaymentEvent,
    response=WebhookReceipt,
    summary="Payment events (paid / refunded): consumption tasks earn points",
    errors=(400, 401, 404),
)
def payment_event(provider: str, app_id: str) -> Response:
    event = parse_body(GenericPaymentEvent)
    handled = webhooks.handle_payment(current_app_caller().app, provider, event, raw_body())
    return ok(WebhookReceipt(duplicate=handled.duplicate, points=handled.points))


@hooks.endpoint(
    "/v1/webhooks/ads/{provider}/{app_id}",
    methods=("POST",),
    auth=WEBHOOK,
    body=GenericAdEvent,
    response=WebhookReceipt,
    summary="Ad events (completed / clicked / exposed): watch-ad tasks earn points",
    errors=(400, 401, 404),
)
def ad_event(provider: str, app_id: str) -> Response:
    event = parse_body(GenericAdEvent)
    handled = webhooks.handle_ad(current_app_caller().app, provider, event, raw_body())
    return ok(WebhookReceipt(duplicate=handled.duplicate, points=handled.points))
