"""WeChat Pay v3 and Douyin payment callbacks through the HTTP route: verified, decrypted, applied once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call, table_items
from tests.support import login_token
from tests.support_providers import (
    API_V3_KEY,
    DOUYIN_TOKEN,
    douyin_callback,
    douyin_payment_msg,
    douyin_refund_msg,
    wechat_keys,
    wechat_notification,
    wechat_refund,
    wechat_transaction,
)


@pytest.fixture
def shop(api: Any, tenant: Tenant) -> Tenant:
    """Given a consumption task (1 point per yuan, at most 99 an order), both providers configured, and a member."""
    owner = bearer(tenant.owner_token)
    task = {
        "template": "consumption",
        "title": "Shop",
        "step_fen": 100,
        "points_per_step": 1,
        "per_order_cap": 99,
        "completions_per_cycle": 50,
    }
    assert call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", {"task": task}, owner).status_code == 201
    _, public_pem, serial = wechat_keys()
    wechat = {"platform_public_key_pem": public_pem, "platform_serial": serial, "api_v3_key": API_V3_KEY}
    configured = call(api, "PUT", f"/v1/admin/apps/{tenant.app_id}/providers/wechatpay", wechat, owner)
    assert configured.status_code == 200, configured.json_body
    assert call(api, "PUT", f"/v1/admin/apps/{tenant.app_id}/providers/douyin", {"token": DOUYIN_TOKEN}, owner).status_code == 200
    login = call(
        api,
        "POST",
        "/v1/auth/member",
        {"app_id": tenant.app_id, "login_token": login_token(tenant.login_secret, "payer-1"), "device_id": "d"},
    )
    assert login.status_code == 200
    tenant.member_token = login.json_body["token"]  # type: ignore[attr-defined]
    return tenant


def _balance(api: Any, shop: Tenant) -> int:
    return int(call(api, "GET", "/v1/me", None, bearer(shop.member_token)).json_body["balance"])  # type: ignore[attr-defined]


def _post_wechat(api: Any, app_id: str, headers: dict[str, str], body: bytes) -> Any:
    return call(api, "POST", f"/v1/webhooks/payments/wechatpay/{app_id}", raw=body, headers={**headers, "content-type": "application/json"})


def test_provider_secrets_are_masked_when_listed(api: Any, shop: Tenant) -> None:
    # When an operator lists the app's payment providers
    listed = call(api, "GET", f"/v1/admin/apps/{shop.app_id}/providers", None, bearer(shop.owner_token)).json_body
    # Then the APIv3 key and the Douyin token appear only as their last 4 characters
    text = str(listed)
    assert API_V3_KEY not in text and DOUYIN_TOKEN not in text
    assert {item["provider"] for item in listed["items"]} == {"wechatpay", "douyin"}


def test_wechat_payment_credits_once_and_refund_claws_back(api: Any, shop: Tenant) -> None:
    private_key, _, _ = wechat_keys()
    # Given a signed, encrypted TRANSACTION.SUCCESS for 50.00 yuan
    headers, body = wechat_notification(private_key, API_V3_KEY, "TRANSACTION.SUCCESS", wechat_transaction("payer-1", "wx-order-1", 5000))
    # When WeChat delivers it twice
    first = _post_wechat(api, shop.app_id, headers, body)
    again = _post_wechat(api, shop.app_id, headers, body)
    # Then both are acknowledged the way WeChat expects and 50 points are credited once
    assert first.status_code == 200 and first.json_body == {"code": "SUCCESS", "message": "成功"}
    assert again.status_code == 200
    assert _balance(api, shop) == 50
    # When the order is refunded (WeChat's refund names no payer: Jifen finds it from the payment)
    headers, body = wechat_notification(private_key, API_V3_KEY, "REFUND.SUCCESS", wechat_refund("wx-order-1", 5000))
    refunded = _post_wechat(api, shop.app_id, headers, body)
    # Then the 50 points are taken back
    assert refunded.status_code == 200, refunded.json_body
    assert _balance(api, shop) == 0


def test_forged_wechat_notification_is_refused_and_nothing_is_written(api: Any, aws: Any, shop: Tenant) -> None:
    # Given a notification signed by a key that is not the platform's
    impostor, _, _ = wechat_keys("impostor")
    headers, body = wechat_notification(impostor, API_V3_KEY, "TRANSACTION.SUCCESS", wechat_transaction("payer-1", "wx-order-2", 5000))
    before = table_items(aws)
    # When it is delivered
    response = _post_wechat(api, shop.app_id, headers, body)
    # Then it is 401 with the envelope and the table is unchanged
    assert response.status_code == 401
    assert response.json_body["error"]["code"] == "UNAUTHORIZED"
    assert table_items(aws) == before
    assert _balance(api, shop) == 0


def test_douyin_payment_and_refund(api: Any, shop: Tenant) -> None:
    # Given a Douyin payment of 20.00 yuan whose cp_extra names the member
    body = douyin_callback(DOUYIN_TOKEN, douyin_payment_msg("dy-1", 2000, cp_extra={"openid": "payer-1"}))
    # When it arrives twice
    first = call(api, "POST", f"/v1/webhooks/payments/douyin/{shop.app_id}", raw=body)
    again = call(api, "POST", f"/v1/webhooks/payments/douyin/{shop.app_id}", raw=body)
    # Then Douyin gets its success body and the member 20 points once
    assert first.status_code == 200 and first.json_body == {"err_no": 0, "err_tips": "success"}
    assert again.status_code == 200
    assert _balance(api, shop) == 20
    # When the order is refunded
    refund = douyin_callback(
        DOUYIN_TOKEN, douyin_refund_msg("dy-r-1", 2000, cp_extra={"openid": "payer-1", "order_id": "dy-1"}), type="refund"
    )
    assert call(api, "POST", f"/v1/webhooks/payments/douyin/{shop.app_id}", raw=refund).status_code == 200
    # Then the points are clawed back
    assert _balance(api, shop) == 0


def test_douyin_callback_with_the_wrong_token_is_refused(api: Any, aws: Any, shop: Tenant) -> None:
    body = douyin_callback("not-the-token", douyin_payment_msg("dy-2", 2000, cp_extra={"openid": "payer-1"}))
    before = table_items(aws)
    response = call(api, "POST", f"/v1/webhooks/payments/douyin/{shop.app_id}", raw=body)
    assert response.status_code == 401
    assert table_items(aws) == before


def test_unconfigured_provider_is_not_found(api: Any, tenant: Tenant) -> None:
    # Given an app without Douyin configured, when a callback arrives, then 404 (nothing to verify it with)
    body = douyin_callback(DOUYIN_TOKEN, douyin_payment_msg("dy-3", 2000, cp_extra={"openid": "payer-1"}))
    response = call(api, "POST", f"/v1/webhooks/payments/douyin/{tenant.app_id}", raw=body)
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "NOT_FOUND"
