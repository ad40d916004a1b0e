"""The shipment CSV parser and the fake payout adapter: pure, no AWS."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import ValidationFailed
from chalicelib.mall.shipping import parse
from chalicelib.payments.payouts import FakePayout, PayoutFailed, PayoutRequest


def test_rows_keep_their_file_line_numbers_whatever_the_line_endings() -> None:
    # Given a spreadsheet export: BOM, CRLF, a quoted comma, blank lines, a header in capitals
    text = '\ufeffOrder_ID,Carrier,Tracking_No\r\no1,SF,SF1\r\n\r\no2,"ZTO, HZ",ZT2\ro3,JD,JD3\n'
    # When it is parsed
    rows, bad = parse(text)
    # Then each row is numbered by its line in the file and nothing is reported bad
    assert [(line, order_id, s.carrier, s.tracking_no) for line, order_id, s in rows] == [
        (2, "o1", "SF", "SF1"),
        (4, "o2", "ZTO, HZ", "ZT2"),
        (5, "o3", "JD", "JD3"),
    ]
    assert bad == []


def test_malformed_rows_are_reported_one_by_one() -> None:
    # Given rows with too few or too many columns, a NUL byte, no order id, a bad tracking number, a repeat
    text = "order_id,carrier,tracking_no\no1,SF\no2,SF,SF2,extra\no3,SF,SF\x003\n,SF,SF4\no5,SF,bad tracking\no6,SF,SF6\no6,SF,SF6\n"
    # When it is parsed
    rows, bad = parse(text)
    # Then only the good row is kept, and every other line is named with a reason
    assert [(line, order_id) for line, order_id, _ in rows] == [(7, "o6")]
    assert [(b.line, b.order_id, b.error.code if b.error else None) for b in bad] == [
        (2, None, "VALIDATION_FAILED"),
        (3, None, "VALIDATION_FAILED"),
        (4, "o3", "VALIDATION_FAILED"),
        (5, None, "VALIDATION_FAILED"),
        (6, "o5", "VALIDATION_FAILED"),
        (8, "o6", "DUPLICATE_ROW"),
    ]
    assert bad[-1].error is not None and "line 7" in bad[-1].error.message


@pytest.mark.parametrize(
    "text",
    ["order,carrier,tracking\no1,SF,SF1", "order_id,carrier,tracking_no", "order_id,carrier,tracking_no\n \n", "\x00"],
    ids=["header", "no rows", "blank rows", "garbage"],
)
def test_a_file_without_a_header_or_rows_is_refused_whole(text: str) -> None:
    with pytest.raises(ValidationFailed):
        parse(text)


def test_the_fake_payout_pays_a_reference_once_and_refuses_configured_members() -> None:
    # Given the fake with one refused openid
    fake = FakePayout(frozenset({"blocked"}))
    request = PayoutRequest(app_id="a_unit", reference="o-unit-1", openid="alice", amount_fen=88)
    # When the same reference is paid twice, and a refused member / a changed amount are tried
    first, again = fake.pay(request), fake.pay(request)
    # Then the result is the same, and the refusals raise PayoutFailed (no money moved)
    assert first == again and first.transfer_id.startswith("fake-")
    for refused in (
        request.model_copy(update={"openid": "blocked", "reference": "o-unit-2"}),
        request.model_copy(update={"openid": "payout-fail-x", "reference": "o-unit-3"}),
        request.model_copy(update={"amount_fen": 99}),
    ):
        with pytest.raises(PayoutFailed):
            fake.pay(refused)
