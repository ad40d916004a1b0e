"""Payment and ad platform webhooks: signature verified before the body is parsed; replays apply nothing.

Generic providers sign with X-Jifen-Webhook-Signature; WeChat Pay v3 and Douyin are verified (and
decrypted) by their adapters during authentication, and get the success body their platform expects.
"""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import WEBHOOK
from chalicelib.core.http.api import Api, current_app_caller, ok, parse_body, raw_body
from chalicelib.tasks import events as webhooks
from chalicelib.tasks.models import GenericAdEvent, GenericPaymentEvent, WebhookReceipt

hooks = Api(__name__, tag="webhooks")


def _provider_ack(provider: str) -> Response:
    from chalicelib.payments import douyin, wechatpay

    body = douyin.SUCCESS_RESPONSE if provider == "douyin" else wechatpay.SUCCESS_RESPONSE
    return Response(status_code=200, body=body)


@hooks.endpoint(
    "/v1/webhooks/payments/{provider}/{app_id}",
    metric="PaymentEventReceived",
    methods=("POST",),
    auth=WEBHOOK,
    body=GenericPaymentEvent,
    response=WebhookReceipt,
    summary="Payment events (generic, wechatpay, douyin): consumption tasks earn points; refunds claw them back",
    errors=(400, 401, 404),
)
def payment_event(provider: str, app_id: str) -> Response:
    caller = current_app_caller()
    if provider != "generic":
        if not caller.ignored:
            webhooks.handle_payment(caller.app, provider, caller.event, raw_body())
        return _provider_ack(provider)
    event = parse_body(GenericPaymentEvent)
    handled = webhooks.handle_payment(caller.app, provider, event, raw_body())
    return ok(WebhookReceipt(duplicate=handled.duplicate, points=handled.points))


@hooks.endpoint(
    "/v1/webhooks/ads/{provider}/{app_id}",
    metric="AdEventReceived",
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
