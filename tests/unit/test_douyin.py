"""Douyin payment callbacks → PaymentEvent: msg_signature, freshness, cp_extra, payment and refund mapping."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.core.errors import Unauthorized, ValidationFailed
from chalicelib.payments import douyin
from chalicelib.payments.adapter import DouyinConfig, OpenidForOrder, PaymentEvent, UnsupportedEvent
from chalicelib.payments.douyin import Douyin
from tests.support_providers import DOUYIN_APPID, DOUYIN_TOKEN, douyin_callback, douyin_payment_msg, douyin_refund_msg

NOW = 1_750_000_000
WINDOW = 300
CONFIG = DouyinConfig(token=DOUYIN_TOKEN)
MEMBER = {"openid": "o-alice", "product_ids": ["sku-1", "sku-2"]}


def parse(body: bytes, *, config: DouyinConfig = CONFIG, now: int = NOW, lookup: OpenidForOrder | None = None) -> PaymentEvent:
    return Douyin(config, lookup).parse({"content-type": "application/json"}, body, now, WINDOW)


def callback(msg: dict[str, Any] | None = None, type: str = "payment", **options: Any) -> bytes:
    options.setdefault("timestamp", NOW)
    return douyin_callback(options.pop("token", DOUYIN_TOKEN), douyin_payment_msg(cp_extra=MEMBER) if msg is None else msg, type, **options)


def edit(body: bytes, **fields: Any) -> bytes:
    """The callback with envelope fields replaced (or removed, for None) after signing."""
    envelope = json.loads(body)
    for name, value in fields.items():
        if value is None:
            envelope.pop(name)
        else:
            envelope[name] = value
    return json.dumps(envelope).encode()


# --- the signature algorithm -----------------------------------------------------------------------


def test_signature_is_sha1_of_the_sorted_fields_joined() -> None:
    # Given the four signed fields, out of order on purpose
    token, timestamp, nonce, msg = "zeta", "1750000000", "42", '{"a":1}'
    # When Jifen computes msg_signature
    # Then it is hex SHA-1 of them sorted lexicographically ("1…" < "4…" < "z…" < "{…") and joined with ""
    assert douyin.msg_signature(token, timestamp, nonce, msg) == hashlib.sha1(b'175000000042zeta{"a":1}').hexdigest()


# --- payments --------------------------------------------------------------------------------------


def test_valid_payment_maps_to_the_exact_event() -> None:
    # Given Douyin's callback for a paid order whose cp_extra names the member and products
    body = callback(douyin_payment_msg("dy-order-42", 1999, cp_extra=MEMBER, paid_at=1_750_000_000))
    # When the adapter parses it
    event = parse(body)
    # Then every field is normalized, with a stable id from the order number and type
    assert event == PaymentEvent(
        id="douyin:dy-order-42:payment",
        type="payment.succeeded",
        openid="o-alice",
        order_id="dy-order-42",
        amount_fen=1999,
        product_ids=["sku-1", "sku-2"],
        paid_at="2025-06-15T15:06:40Z",
    )


def test_retried_callback_has_the_same_event_id() -> None:
    # Given the same payment delivered twice, with different timestamps and nonces
    first = callback(timestamp=NOW - 100, nonce="1111")
    second = callback(timestamp=NOW, nonce="2222")
    # When both are parsed
    # Then they are the same event (so the second is deduplicated)
    assert parse(first) == parse(second)


@pytest.mark.parametrize("cp_extra", [None, "tenant free text", {"product_ids": ["sku-1"]}, "[1,2]"])
def test_payment_without_openid_in_cp_extra_is_a_validation_error(cp_extra: Any) -> None:
    # Given a genuine payment whose cp_extra does not name the member
    body = callback(douyin_payment_msg(cp_extra=cp_extra))
    # When it is parsed
    # Then it is refused, saying where the openid belongs
    with pytest.raises(ValidationFailed, match="cp_extra"):
        parse(body)


def test_cp_extra_with_malformed_product_ids_is_a_validation_error() -> None:
    # Given cp_extra meant for Jifen with product_ids that are not strings
    body = callback(douyin_payment_msg(cp_extra={"openid": "o-alice", "product_ids": [1, 2]}))
    # When it is parsed
    # Then it is refused
    with pytest.raises(ValidationFailed):
        parse(body)


@pytest.mark.parametrize("amount", [19.99, "1999", -1, None])
def test_amount_that_is_not_non_negative_integer_fen_is_a_validation_error(amount: Any) -> None:
    # Given a genuine payment whose total_amount is a float, a string, negative or missing
    msg = douyin_payment_msg(cp_extra=MEMBER)
    msg["total_amount"] = amount
    # When it is parsed
    # Then it is refused rather than coerced
    with pytest.raises(ValidationFailed):
        parse(callback(msg))


def test_payment_not_in_success_status_is_unsupported() -> None:
    # Given a genuine callback of a payment that did not succeed
    body = callback(douyin_payment_msg(cp_extra=MEMBER, status="TIMEOUT"))
    # When it is parsed
    # Then it is an UnsupportedEvent (a ValidationFailed the route may acknowledge)
    with pytest.raises(UnsupportedEvent) as caught:
        parse(body)
    assert isinstance(caught.value, ValidationFailed) and caught.value.event_type == "payment/TIMEOUT"


def test_other_callback_types_are_unsupported() -> None:
    # Given a genuine callback of another type (settlement)
    # When it is parsed
    # Then it is unsupported
    with pytest.raises(UnsupportedEvent) as caught:
        parse(callback(type="settle"))
    assert caught.value.event_type == "settle"


def test_configured_appid_refuses_another_apps_callback() -> None:
    # Given an app bound to one mini-program and a genuine callback of another appid
    body = callback(douyin_payment_msg(cp_extra=MEMBER, appid="tt-other"))
    # When it is parsed
    # Then it is refused; a callback of the bound appid passes
    with pytest.raises(Unauthorized, match="appid"):
        parse(body, config=DouyinConfig(token=DOUYIN_TOKEN, appid=DOUYIN_APPID))
    assert parse(callback(), config=DouyinConfig(token=DOUYIN_TOKEN, appid=DOUYIN_APPID)).openid == "o-alice"


# --- refunds ---------------------------------------------------------------------------------------


def test_refund_maps_to_the_paid_order_named_in_cp_extra() -> None:
    # Given a refund whose cp_extra names the member and the order it refunds
    extra = {"openid": "o-alice", "order_id": "dy-order-42", "product_ids": ["sku-1"]}
    body = callback(douyin_refund_msg("dy-refund-7", 500, cp_extra=extra, refunded_at=1_750_086_400), type="refund")
    # When it is parsed
    event = parse(body)
    # Then it is a refund of that order, identified by the refund number
    assert event == PaymentEvent(
        id="douyin:dy-refund-7:refund",
        type="payment.refunded",
        openid="o-alice",
        order_id="dy-order-42",
        amount_fen=500,
        product_ids=["sku-1"],
        paid_at="2025-06-16T15:06:40Z",
    )


def test_refund_without_order_id_uses_the_refund_number() -> None:
    # Given a refund whose cp_extra names only the member
    body = callback(douyin_refund_msg("dy-refund-7", cp_extra={"openid": "o-alice"}), type="refund")
    # When it is parsed
    # Then the order id falls back to cp_refundno
    assert parse(body).order_id == "dy-refund-7"


def test_two_partial_refunds_of_one_order_are_two_events() -> None:
    # Given two refunds of the same order
    extra = {"openid": "o-alice", "order_id": "dy-order-42"}
    first = parse(callback(douyin_refund_msg("dy-refund-1", 100, cp_extra=extra), type="refund"))
    second = parse(callback(douyin_refund_msg("dy-refund-2", 200, cp_extra=extra), type="refund"))
    # When both are parsed
    # Then they share the order but not the event id
    assert first.order_id == second.order_id and first.id != second.id


def test_refund_without_openid_asks_for_the_recorded_payment() -> None:
    # Given a refund naming its order but not the member, and the member who paid that order
    body = callback(douyin_refund_msg(cp_extra={"order_id": "dy-order-42"}), type="refund")
    # When it is parsed with the lookup
    event = parse(body, lookup=lambda order_id: "o-alice" if order_id == "dy-order-42" else None)
    # Then the member comes from the lookup
    assert (event.openid, event.order_id) == ("o-alice", "dy-order-42")


@pytest.mark.parametrize("lookup", [None, lambda _: None])
def test_refund_whose_member_cannot_be_found_is_a_validation_error(lookup: OpenidForOrder | None) -> None:
    # Given a refund that names no member and no recorded payment
    body = callback(douyin_refund_msg(cp_extra={"order_id": "dy-order-42"}), type="refund")
    # When it is parsed
    # Then it is refused
    with pytest.raises(ValidationFailed, match="openid"):
        parse(body, lookup=lookup)


def test_refund_not_in_success_status_is_unsupported() -> None:
    # Given a failed refund
    body = callback(douyin_refund_msg(cp_extra={"openid": "o-alice"}, status="FAIL"), type="refund")
    # When it is parsed
    # Then it is unsupported
    with pytest.raises(UnsupportedEvent):
        parse(body)


@pytest.mark.parametrize(
    ("msg", "signed_type", "flipped"),
    [(douyin_payment_msg(cp_extra=MEMBER), "payment", "refund"), (douyin_refund_msg(cp_extra=MEMBER), "refund", "payment")],
)
def test_flipping_the_unsigned_type_is_refused(msg: dict[str, Any], signed_type: str, flipped: str) -> None:
    # Given a genuine callback whose unsigned "type" is changed in transit
    body = edit(callback(msg, signed_type), type=flipped)
    # When it is parsed
    # Then the msg does not fit the other type's shape and nothing is applied
    with pytest.raises(ValidationFailed):
        parse(body)


# --- authenticity ----------------------------------------------------------------------------------


def test_callback_signed_with_another_token_is_rejected() -> None:
    # Given a callback signed with a token that is not the app's
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="msg_signature"):
        parse(callback(token="someone-elses-token"))


def test_tampered_msg_is_rejected() -> None:
    # Given a genuine callback whose msg is changed after signing (a bigger amount)
    body = callback(douyin_payment_msg(total_amount=100, cp_extra=MEMBER))
    msg = json.loads(json.loads(body)["msg"])
    msg["total_amount"] = 100_000
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="msg_signature"):
        parse(edit(body, msg=json.dumps(msg)))


@pytest.mark.parametrize("field", ["timestamp", "nonce"])
def test_changed_timestamp_or_nonce_is_rejected(field: str) -> None:
    # Given a genuine callback whose timestamp or nonce is changed after signing (still fresh)
    body = edit(callback(), **{field: str(NOW - 1)})
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="msg_signature"):
        parse(body)


@pytest.mark.parametrize("skew", [WINDOW + 1, -(WINDOW + 1), 86_400])
def test_stale_callback_is_rejected(skew: int) -> None:
    # Given a correctly signed callback more than the window away from now
    # When it is parsed
    # Then it is rejected
    with pytest.raises(Unauthorized, match="window"):
        parse(callback(timestamp=NOW - skew))


@pytest.mark.parametrize("skew", [WINDOW, -WINDOW])
def test_callback_at_the_window_edge_is_accepted(skew: int) -> None:
    # Given a callback signed exactly the window before or after now
    # When it is parsed
    # Then it is accepted
    assert parse(callback(timestamp=NOW - skew)).type == "payment.succeeded"


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_a_validation_error(body: bytes) -> None:
    # Given a body that is not a JSON object
    # When it is parsed
    # Then it is refused as undecodable
    with pytest.raises(ValidationFailed):
        parse(body)


@pytest.mark.parametrize("missing", ["timestamp", "nonce", "msg", "msg_signature"])
def test_missing_signed_field_is_rejected(missing: str) -> None:
    # Given a genuine callback without one of the fields the signature needs
    # When it is parsed
    # Then it is rejected as unauthorized
    with pytest.raises(Unauthorized, match=missing):
        parse(edit(callback(), **{missing: None}))


def test_signed_msg_that_is_not_json_is_a_validation_error() -> None:
    # Given a correctly signed callback whose msg is not JSON
    body = douyin_callback(DOUYIN_TOKEN, {}, timestamp=NOW)
    envelope = json.loads(body)
    envelope["msg"] = "not json"
    envelope["msg_signature"] = douyin.msg_signature(DOUYIN_TOKEN, envelope["timestamp"], envelope["nonce"], "not json")
    # When it is parsed
    # Then it is refused as invalid, not unauthorized
    with pytest.raises(ValidationFailed, match="msg"):
        parse(json.dumps(envelope).encode())


def test_upper_case_signature_and_integer_timestamp_are_accepted() -> None:
    # Given a callback with an integer timestamp and nonce and an upper-case hex signature
    envelope = json.loads(callback())
    body = edit(
        callback(),
        timestamp=int(envelope["timestamp"]),
        nonce=int(envelope["nonce"]),
        msg_signature=envelope["msg_signature"].upper(),
    )
    # When it is parsed
    # Then it verifies: the integers sign as their decimal text
    assert parse(body).openid == "o-alice"


def test_non_ascii_signature_is_rejected_not_crashed() -> None:
    # Given a callback whose msg_signature is not hex at all
    # When it is parsed
    # Then it is rejected as unauthorized
    with pytest.raises(Unauthorized):
        parse(edit(callback(), msg_signature="签名"))


# --- configuration and constants -------------------------------------------------------------------


def test_token_is_required_and_not_in_the_repr() -> None:
    # Given a Douyin configuration
    # When it is built without a token, or logged
    # Then the first is refused and the second hides the token
    with pytest.raises(ValidationError):
        DouyinConfig(token="")
    assert DOUYIN_TOKEN not in repr(CONFIG)


def test_success_response_is_what_douyin_expects() -> None:
    # Given the body the route answers with
    # When Douyin reads it
    # Then err_no is 0
    assert douyin.SUCCESS_RESPONSE == {"err_no": 0, "err_tips": "success"}


# --- properties ------------------------------------------------------------------------------------

member_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
order_numbers = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127), min_size=1, max_size=64)


@settings(max_examples=100, deadline=None)
@given(
    openid=member_text,
    order_id=order_numbers,
    amount=st.integers(min_value=0, max_value=10**12),
    product_ids=st.lists(member_text, max_size=5),
    paid_at=st.integers(min_value=0, max_value=4_102_444_800),
)
def test_round_trip_preserves_the_payment(openid: str, order_id: str, amount: int, product_ids: list[str], paid_at: int) -> None:
    # Given any member, order, amount, products and time, sent the way Douyin sends them
    msg = douyin_payment_msg(order_id, amount, cp_extra={"openid": openid, "product_ids": product_ids}, paid_at=paid_at)
    # When the adapter parses the callback
    event = parse(callback(msg))
    # Then every field comes back exactly
    assert (event.id, event.openid, event.order_id, event.amount_fen, event.product_ids) == (
        f"douyin:{order_id}:payment",
        openid,
        order_id,
        amount,
        product_ids,
    )
    assert event.paid_at is not None and event.paid_at.endswith("Z")


SIGNED_BODY = callback(douyin_payment_msg("dy-order-9", 1999, cp_extra={"openid": "o-amélie", "product_ids": ["礼品-1"]}))


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(SIGNED_BODY) - 1), flip=st.integers(min_value=1, max_value=255))
def test_no_single_byte_change_yields_a_different_event(position: int, flip: int) -> None:
    # Given a genuine callback (Douyin signs fields, not bytes: JSON whitespace or \\u escape case carry no meaning)
    body = bytearray(SIGNED_BODY)
    # When any one byte of it is changed
    body[position] ^= flip
    # Then it is refused, or it still means exactly the same event
    expected = parse(SIGNED_BODY)
    try:
        event = parse(bytes(body))
    except (Unauthorized, ValidationFailed):
        return
    assert event == expected


def test_signed_body_used_by_the_property_is_a_valid_payment() -> None:
    # Given the genuine callback the property mutates
    # When it is parsed unchanged
    event = parse(SIGNED_BODY)
    # Then it is the payment it describes, so the property compares against a real event
    assert (event.openid, event.order_id, event.product_ids) == ("o-amélie", "dy-order-9", ["礼品-1"])
