"""WeChat Pay API v3 notifications → PaymentEvent: signature, serial, freshness, decryption, mapping."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.core.errors import Unauthorized, ValidationFailed
from chalicelib.payments import wechatpay
from chalicelib.payments.adapter import OpenidForOrder, PaymentEvent, UnsupportedEvent, WechatPayConfig
from chalicelib.payments.wechatpay import WechatPay
from tests.support_providers import (
    API_V3_KEY,
    OTHER_API_V3_KEY,
    WECHAT_APPID,
    public_pem,
    wechat_encrypt,
    wechat_keys,
    wechat_notification,
    wechat_refund,
    wechat_signature,
    wechat_transaction,
)

NOW = 1_750_000_000
WINDOW = 300
PRIVATE_KEY, PUBLIC_PEM, SERIAL = wechat_keys()
CONFIG = WechatPayConfig(platform_public_key_pem=PUBLIC_PEM, platform_serial=SERIAL, api_v3_key=API_V3_KEY)


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def notify(
    transaction: dict[str, Any] | None = None, event_type: str = "TRANSACTION.SUCCESS", **options: Any
) -> tuple[dict[str, str], bytes]:
    options.setdefault("timestamp", NOW)
    headers, body = wechat_notification(
        options.pop("private_key", PRIVATE_KEY),
        options.pop("api_v3_key", API_V3_KEY),
        event_type,
        wechat_transaction() if transaction is None else transaction,
        **options,
    )
    return lower(headers), body


def parse(
    headers: dict[str, str], body: bytes, *, config: WechatPayConfig = CONFIG, now: int = NOW, lookup: OpenidForOrder | None = None
) -> PaymentEvent:
    return WechatPay(config, lookup).parse(headers, body, now, WINDOW)


def resign(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Headers re-signed over ``body`` by the real platform key: the body passes, whatever it says."""
    signed = dict(headers)
    signed["wechatpay-signature"] = wechat_signature(PRIVATE_KEY, headers["wechatpay-timestamp"], headers["wechatpay-nonce"], body)
    return signed


def with_resource(transaction: Any, *, algorithm: str = "AEAD_AES_256_GCM", ciphertext: str | None = None) -> tuple[dict[str, str], bytes]:
    """A signed notification whose resource is built by hand (for payloads the helper would not produce)."""
    plaintext = transaction if isinstance(transaction, bytes) else json.dumps(transaction).encode()
    headers, body = notify()
    notification = json.loads(body)
    resource = notification["resource"]
    resource["algorithm"] = algorithm
    resource["ciphertext"] = ciphertext or wechat_encrypt(API_V3_KEY, plaintext, resource["nonce"], resource["associated_data"])
    body = json.dumps(notification).encode()
    return resign(headers, body), body


# --- payments --------------------------------------------------------------------------------------


def test_valid_payment_maps_to_the_exact_event() -> None:
    # Given WeChat Pay's notification of a paid order with products in attach and a coupon applied
    transaction = wechat_transaction(
        "o-alice", "order-42", 1999, payer_total=1899, attach='{"product_ids":["sku-1","sku-2"]}', success_time="2025-06-15T20:00:00+08:00"
    )
    headers, body = notify(transaction, notification_id="EV-2025-0001")
    # When the adapter parses it
    event = parse(headers, body)
    # Then every field is normalized: notification id, member, order, what the payer paid, UTC time
    assert event == PaymentEvent(
        id="EV-2025-0001",
        type="payment.succeeded",
        openid="o-alice",
        order_id="order-42",
        amount_fen=1899,
        product_ids=["sku-1", "sku-2"],
        paid_at="2025-06-15T12:00:00Z",
    )


def test_event_dumps_as_the_generic_webhook_body() -> None:
    # Given a parsed WeChat payment
    event = parse(*notify(wechat_transaction("o-alice", "order-42", 500), notification_id="EV-1"))
    # When it is dumped for recording
    # Then it has exactly the generic payment event's fields (API.md) and integer fen
    assert event.model_dump(mode="json") == {
        "id": "EV-1",
        "type": "payment.succeeded",
        "openid": "o-alice",
        "order_id": "order-42",
        "amount_fen": 500,
        "product_ids": [],
        "paid_at": "2025-06-15T12:00:00Z",
    }


def test_order_total_is_used_when_payer_total_is_absent() -> None:
    # Given a transaction without payer_total
    transaction = wechat_transaction(total=2500)
    del transaction["amount"]["payer_total"]
    # When it is parsed
    # Then the order total is the amount
    assert parse(*notify(transaction)).amount_fen == 2500


def test_openid_in_attach_names_the_member() -> None:
    # Given a tenant whose member ids are not this appid's openids, naming the member in attach
    transaction = wechat_transaction("o-payer-under-payment-appid", attach='{"openid":"member-7","product_ids":["p"]}')
    # When it is parsed
    event = parse(*notify(transaction))
    # Then attach wins over payer.openid
    assert (event.openid, event.product_ids) == ("member-7", ["p"])


@pytest.mark.parametrize("attach", ["free text from the tenant", "[1, 2]", "42", ""])
def test_attach_that_is_not_a_json_object_means_no_products(attach: str) -> None:
    # Given an attach the tenant uses for its own purposes
    # When the payment is parsed
    event = parse(*notify(wechat_transaction("o-alice", attach=attach)))
    # Then it is ignored: payer.openid, no products
    assert (event.openid, event.product_ids) == ("o-alice", [])


def test_json_attach_with_malformed_product_ids_is_a_validation_error() -> None:
    # Given attach meant for Jifen but with product_ids not a list of strings
    headers, body = notify(wechat_transaction(attach='{"product_ids":"sku-1"}'))
    # When it is parsed
    # Then it is refused as invalid, naming the field
    with pytest.raises(ValidationFailed) as caught:
        parse(headers, body)
    assert caught.value.details and caught.value.details[0]["field"] == "product_ids"


def test_payment_without_any_openid_is_a_validation_error() -> None:
    # Given a transaction with no payer and no attach
    transaction = wechat_transaction()
    del transaction["payer"]
    # When it is parsed
    # Then it is refused: a payment must name its member
    with pytest.raises(ValidationFailed, match="openid"):
        parse(*notify(transaction))


@pytest.mark.parametrize("total", [19.99, "1999", -1, True])
def test_amount_that_is_not_non_negative_integer_fen_is_a_validation_error(total: Any) -> None:
    # Given a transaction whose amount is a float, a string, negative or a boolean
    transaction = wechat_transaction()
    transaction["amount"] = {"total": total}
    # When it is parsed
    # Then it is refused rather than coerced
    with pytest.raises(ValidationFailed):
        parse(*notify(transaction))


def test_malformed_success_time_is_a_validation_error() -> None:
    # Given a success_time without an offset
    # When it is parsed
    # Then it is refused (a naive time could be any zone)
    with pytest.raises(ValidationFailed, match="success_time"):
        parse(*notify(wechat_transaction(success_time="2025-06-15T20:00:00")))


def test_transaction_not_in_success_state_is_unsupported() -> None:
    # Given a TRANSACTION.SUCCESS notification whose trade_state is not SUCCESS
    transaction = wechat_transaction()
    transaction["trade_state"] = "NOTPAY"
    # When it is parsed
    # Then it is an UnsupportedEvent (a ValidationFailed the route may acknowledge)
    with pytest.raises(UnsupportedEvent) as caught:
        parse(*notify(transaction))
    assert isinstance(caught.value, ValidationFailed) and caught.value.event_type == "TRANSACTION.SUCCESS/NOTPAY"


@pytest.mark.parametrize("event_type", ["REFUND.ABNORMAL", "REFUND.CLOSED", "TRANSACTION.CLOSED"])
def test_other_event_types_are_unsupported(event_type: str) -> None:
    # Given a genuine notification of an event with nothing to apply
    # When it is parsed
    # Then it is an UnsupportedEvent naming the type
    with pytest.raises(UnsupportedEvent) as caught:
        parse(*notify(wechat_refund(refund_status="CLOSED"), event_type=event_type))
    assert caught.value.event_type == event_type


def test_configured_appid_refuses_another_apps_payment() -> None:
    # Given an app bound to one mini-program, and a genuine payment of another appid of the same merchant
    config = CONFIG.model_copy(update={"appid": "wx-other-app"})
    headers, body = notify(wechat_transaction(appid=WECHAT_APPID))
    # When it is parsed for this app
    # Then it is refused; the same notification passes for the app it belongs to
    with pytest.raises(Unauthorized, match="appid"):
        parse(headers, body, config=config)
    assert parse(headers, body, config=CONFIG.model_copy(update={"appid": WECHAT_APPID})).openid == "o-wechat-member-1"


@pytest.mark.parametrize("amount_fen", ["1999", 19.99, 19.0, -1])
def test_normalized_event_holds_only_non_negative_integer_fen(amount_fen: Any) -> None:
    # Given an event built from some provider's (or the generic webhook's) fields with a non-integer amount
    fields = {"id": "EV-1", "type": "payment.succeeded", "openid": "o-alice", "order_id": "order-1", "amount_fen": amount_fen}
    # When it is validated
    # Then it is refused rather than coerced
    with pytest.raises(ValidationError, match="amount_fen"):
        PaymentEvent.model_validate(fields)


# --- refunds ---------------------------------------------------------------------------------------


def test_refund_takes_its_member_from_the_recorded_payment() -> None:
    # Given a refund notification (WeChat names no payer) and the member who paid that order
    asked: list[str] = []

    def openid_for_order(order_id: str) -> str | None:
        asked.append(order_id)
        return "o-alice" if order_id == "order-42" else None

    headers, body = notify(wechat_refund("order-42", 700, total=1999), event_type="REFUND.SUCCESS", notification_id="EV-R-1")
    # When it is parsed
    event = parse(headers, body, lookup=openid_for_order)
    # Then it is a refund of that order, by that member, of the refunded amount, at the refund time
    assert event == PaymentEvent(
        id="EV-R-1",
        type="payment.refunded",
        openid="o-alice",
        order_id="order-42",
        amount_fen=700,
        product_ids=[],
        paid_at="2025-06-16T02:00:00Z",
    )
    assert asked == ["order-42"]


def test_refund_amount_is_what_the_payer_gets_back() -> None:
    # Given a refund of 1000 fen of which 900 go back to the payer (the rest was a coupon)
    headers, body = notify(wechat_refund("order-42", 1000, payer_refund=900), event_type="REFUND.SUCCESS")
    # When it is parsed
    # Then the amount mirrors the payment side (payer_total): 900
    assert parse(headers, body, lookup=lambda _: "o-alice").amount_fen == 900


def test_refund_openid_in_the_resource_needs_no_lookup() -> None:
    # Given a refund resource that does name the member in attach (not sent by WeChat today)
    refund = {**wechat_refund("order-42"), "attach": '{"openid":"o-bob","product_ids":["sku-9"]}'}

    def no_lookup(order_id: str) -> str | None:
        raise AssertionError("the lookup must not be needed")

    # When it is parsed
    event = parse(*notify(refund, event_type="REFUND.SUCCESS"), lookup=no_lookup)
    # Then the resource's member and products are used
    assert (event.openid, event.product_ids) == ("o-bob", ["sku-9"])


@pytest.mark.parametrize("lookup", [None, lambda _: None])
def test_refund_whose_member_cannot_be_found_is_a_validation_error(lookup: OpenidForOrder | None) -> None:
    # Given a refund notification and no recorded payment for its order
    headers, body = notify(wechat_refund("order-unknown"), event_type="REFUND.SUCCESS")
    # When it is parsed
    # Then it is refused, saying how to name the member
    with pytest.raises(ValidationFailed, match="openid"):
        parse(headers, body, lookup=lookup)


def test_refund_not_in_success_status_is_unsupported() -> None:
    # Given a REFUND.SUCCESS notification whose refund_status is not SUCCESS
    headers, body = notify(wechat_refund(refund_status="PROCESSING"), event_type="REFUND.SUCCESS")
    # When it is parsed
    # Then it is unsupported
    with pytest.raises(UnsupportedEvent):
        parse(headers, body, lookup=lambda _: "o-alice")


# --- authenticity ----------------------------------------------------------------------------------


def test_tampered_body_is_rejected() -> None:
    # Given a genuine notification whose body is changed after signing (another notification id)
    headers, body = notify(notification_id="EV-1")
    tampered = body.replace(b'"EV-1"', b'"EV-2"')
    assert tampered != body
    # When it is parsed
    # Then the signature no longer matches
    with pytest.raises(Unauthorized, match="signature"):
        parse(headers, tampered)


def test_notification_signed_by_another_key_is_rejected() -> None:
    # Given a notification signed by a key that is not the configured platform key, claiming its serial
    other_key, _, _ = wechat_keys("attacker")
    headers, body = notify(private_key=other_key, serial=SERIAL)
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="signature"):
        parse(headers, body)


def test_wrong_serial_is_rejected() -> None:
    # Given a genuine notification announcing another platform serial (e.g. a key the app has not configured)
    headers, body = notify(serial="5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
    # When it is parsed
    # Then it is rejected before anything else
    with pytest.raises(Unauthorized, match="Serial"):
        parse(headers, body)


@pytest.mark.parametrize("skew", [WINDOW + 1, -(WINDOW + 1), 86_400])
def test_stale_timestamp_is_rejected(skew: int) -> None:
    # Given a correctly signed notification more than the window away from now
    headers, body = notify(timestamp=NOW - skew)
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="window"):
        parse(headers, body)


@pytest.mark.parametrize("skew", [WINDOW, -WINDOW])
def test_timestamp_at_the_window_edge_is_accepted(skew: int) -> None:
    # Given a notification signed exactly the window before or after now
    # When it is parsed
    # Then it is accepted
    assert parse(*notify(timestamp=NOW - skew)).type == "payment.succeeded"


@pytest.mark.parametrize("timestamp", ["175000000²", "1750000000.0", "abc"])
def test_timestamp_that_is_not_unix_seconds_is_rejected(timestamp: str) -> None:
    # Given a notification signed over a timestamp that is not ASCII unix seconds
    headers, body = notify()
    headers["wechatpay-timestamp"] = timestamp
    headers = resign(headers, body)
    # When it is parsed
    # Then it is rejected as unauthorized (never a crash)
    with pytest.raises(Unauthorized):
        parse(headers, body)


@pytest.mark.parametrize("signature", ["not base64!", "QUJD=", "", "ÅÄÖ"])
def test_signature_that_is_not_base64_is_rejected(signature: str) -> None:
    # Given a notification whose signature header is not (valid) base64 of a signature
    headers, body = notify()
    headers["wechatpay-signature"] = signature
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized):
        parse(headers, body)


@pytest.mark.parametrize("missing", ["wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial"])
def test_missing_header_is_rejected(missing: str) -> None:
    # Given a genuine notification without one of the signature headers
    headers, body = notify()
    del headers[missing]
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="missing"):
        parse(headers, body)


def test_other_signature_type_is_rejected() -> None:
    # Given a notification announcing a signature scheme Jifen does not verify
    headers, body = notify()
    headers["wechatpay-signature-type"] = "WECHATPAY2-SM2-WITH-SM3"
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="signature type"):
        parse(headers, body)


def test_header_names_in_any_case_are_read() -> None:
    # Given headers exactly as WeChat Pay sends them (mixed case)
    headers, body = wechat_notification(PRIVATE_KEY, API_V3_KEY, "TRANSACTION.SUCCESS", wechat_transaction(), timestamp=NOW)
    # When they are passed without lower-casing
    # Then the notification still verifies
    assert WechatPay(CONFIG).parse(headers, body, NOW, WINDOW).openid == "o-wechat-member-1"


def test_wrong_api_v3_key_is_unauthorized() -> None:
    # Given a correctly signed notification whose resource was encrypted with another APIv3 key
    headers, body = notify(api_v3_key=OTHER_API_V3_KEY)
    # When it is parsed with the app's configured key
    # Then it is Unauthorized: GCM's tag check fails, and the fix is the app's credentials
    with pytest.raises(Unauthorized, match="api_v3_key"):
        parse(headers, body)


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    # Given a body that is not JSON
    body = b"not json at all"
    headers, _ = notify()
    # When it arrives unsigned, then signed by the platform
    # Then the first is Unauthorized (never parsed) and only the second reaches JSON decoding
    with pytest.raises(Unauthorized):
        parse(headers, body)
    with pytest.raises(ValidationFailed, match="not JSON"):
        parse(resign(headers, body), body)


def test_resource_with_another_algorithm_is_a_validation_error() -> None:
    # Given a signed notification whose resource claims another algorithm
    # When it is parsed
    # Then it is refused
    with pytest.raises(ValidationFailed, match="AEAD_AES_256_GCM"):
        parse(*with_resource(wechat_transaction(), algorithm="AEAD_SM4_GCM"))


def test_resource_ciphertext_that_is_not_base64_is_a_validation_error() -> None:
    # Given a signed notification whose ciphertext is not base64
    # When it is parsed
    # Then it is refused as undecodable
    with pytest.raises(ValidationFailed, match="base64"):
        parse(*with_resource(wechat_transaction(), ciphertext="%%%not-base64%%%"))


def test_decrypted_resource_that_is_not_json_is_a_validation_error() -> None:
    # Given a signed notification whose resource decrypts to something that is not JSON
    # When it is parsed
    # Then it is refused as invalid
    with pytest.raises(ValidationFailed, match="transaction"):
        parse(*with_resource(b"\xff\xfe not json"))


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("api_v3_key", ["short", "x" * 33, "é" * 32, " " * 32])
def test_api_v3_key_must_be_32_ascii_characters(api_v3_key: str) -> None:
    # Given an APIv3 key that is not 32 printable ASCII characters
    # When the configuration is validated
    # Then it is refused
    with pytest.raises(ValidationError):
        WechatPayConfig(platform_public_key_pem=PUBLIC_PEM, platform_serial=SERIAL, api_v3_key=api_v3_key)


def test_platform_key_must_be_an_rsa_pem_of_2048_bits() -> None:
    # Given a configuration with text that is not a key, and one with a weak key
    weak = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    # When each is validated
    # Then both are refused
    for pem in ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", weak]:
        with pytest.raises(ValidationError, match="platform"):
            WechatPayConfig(platform_public_key_pem=pem, platform_serial=SERIAL, api_v3_key=API_V3_KEY)


def test_platform_certificate_is_accepted_as_the_key() -> None:
    # Given the platform certificate (PEM) instead of the bare public key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(PRIVATE_KEY.public_key())
        .serial_number(0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(PRIVATE_KEY, hashes.SHA256())
    )
    config = CONFIG.model_copy(update={"platform_public_key_pem": certificate.public_bytes(Encoding.PEM).decode()})
    WechatPayConfig.model_validate(config.model_dump())
    # When a notification signed by the certificate's key is parsed
    # Then it verifies
    assert parse(*notify(), config=config).type == "payment.succeeded"


def test_api_v3_key_is_not_in_the_config_repr() -> None:
    # Given a configuration
    # When it is logged
    # Then the APIv3 key does not appear
    assert API_V3_KEY not in repr(CONFIG)


# --- properties ------------------------------------------------------------------------------------

member_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
order_numbers = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127), min_size=1, max_size=32)


@settings(max_examples=60, deadline=None)
@given(
    openid=member_text,
    order_id=order_numbers,
    amount=st.integers(min_value=0, max_value=10**12),
    product_ids=st.lists(st.text(min_size=1, max_size=12), max_size=5),
)
def test_round_trip_preserves_the_payment(openid: str, order_id: str, amount: int, product_ids: list[str]) -> None:
    # Given any member, order, amount and products, sent the way WeChat Pay sends them
    attach = json.dumps({"product_ids": product_ids}) if product_ids else None
    headers, body = notify(wechat_transaction(openid, order_id, amount, attach=attach), notification_id=f"EV-{order_id}")
    # When the adapter parses the notification
    event = parse(headers, body)
    # Then every field comes back exactly, the amount still an integer
    assert (event.id, event.openid, event.order_id, event.amount_fen, event.product_ids) == (
        f"EV-{order_id}",
        openid,
        order_id,
        amount,
        product_ids,
    )
    assert type(event.amount_fen) is int


SIGNED_HEADERS, SIGNED_BODY = notify()


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(SIGNED_BODY) - 1), flip=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_of_the_body_fails_verification(position: int, flip: int) -> None:
    # Given a genuine notification
    body = bytearray(SIGNED_BODY)
    # When any one byte of its body is changed
    body[position] ^= flip
    # Then it is rejected as unauthorized (the signature covers the raw bytes)
    with pytest.raises(Unauthorized):
        parse(SIGNED_HEADERS, bytes(body))


def test_the_unchanged_body_used_by_the_property_verifies() -> None:
    # Given the genuine notification the property mutates
    # When it is parsed unchanged
    # Then it is accepted, so the property's rejections come from the change alone
    assert parse(SIGNED_HEADERS, SIGNED_BODY).type == "payment.succeeded"


def test_constants_are_what_wechat_pay_expects() -> None:
    # Given the acknowledgement the route sends
    # When WeChat Pay reads it
    # Then it is a 2xx with code SUCCESS
    assert wechatpay.SUCCESS_STATUS in (200, 204)
    assert wechatpay.SUCCESS_RESPONSE["code"] == "SUCCESS"
