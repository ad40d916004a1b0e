"""Opaque list cursors: a round trip, and no hopping into another partition with a crafted cursor."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import ValidationFailed
from chalicelib.core.table.cursors import decode_cursor, encode_cursor

LAST_KEY = {
    "PK": {"S": "APP#app_1"},
    "SK": {"S": "APP"},
    "GSI1PK": {"S": "TENANT#acme#APPS"},
    "GSI1SK": {"S": "APP#app_1"},
}


def craft(plain: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def test_cursor_round_trips_to_the_same_start_key() -> None:
    # Given the LastEvaluatedKey of a page of acme's apps
    # When it is encoded into a cursor and decoded for the same list
    cursor = encode_cursor(LAST_KEY)
    decoded = decode_cursor(cursor, expect={"GSI1PK": "TENANT#acme#APPS"})
    # Then the ExclusiveStartKey is the key that was encoded, and the cursor is URL-safe without padding
    assert decoded == LAST_KEY
    assert cursor is not None and "=" not in cursor and "+" not in cursor and "/" not in cursor


@pytest.mark.parametrize("last_key", [None, {}])
def test_no_last_key_means_no_cursor(last_key: dict[str, object] | None) -> None:
    # Given the last page (no LastEvaluatedKey)
    # When it is encoded
    # Then there is no cursor
    assert encode_cursor(last_key) is None


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_means_the_first_page(cursor: str | None) -> None:
    # Given a request without a cursor
    # When it is decoded
    # Then the list starts at the beginning
    assert decode_cursor(cursor, expect={"PK": "x"}) is None


def test_cursor_of_another_tenants_list_is_refused() -> None:
    # Given a cursor taken from acme's app list
    cursor = encode_cursor(LAST_KEY)
    # When globex presents it on its own app list
    # Then it is refused as not a cursor of this list
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, expect={"GSI1PK": "TENANT#globex#APPS"})
    assert caught.value.details == [{"field": "cursor", "problem": "not a cursor from this list"}]


def test_crafted_cursor_without_the_partition_key_is_refused() -> None:
    # Given a hand-made cursor that omits the partition attribute being read
    cursor = craft({"PK": "APP#app_1", "SK": "APP"})
    # When it is decoded for a GSI list
    # Then it is refused
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, expect={"GSI1PK": "TENANT#acme#APPS"})


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!!",
        "%%%%",
        craft(["PK", "x"]),
        craft("a string"),
        craft({"PK": 1}),
        craft({"PK": {"S": "nested"}}),
        base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
        base64.urlsafe_b64encode(b"{not json").decode(),
    ],
    ids=["not-base64", "percent", "json-list", "json-string", "number-value", "nested-value", "binary", "bad-json"],
)
def test_garbage_cursor_is_refused(cursor: str) -> None:
    # Given a cursor that is not one Jifen produced
    # When it is decoded
    # Then it is a validation error, not a crash
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, expect={"PK": "APP#app_1"})


key_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=100, deadline=None)
@given(pk=key_text, sk=key_text)
def test_property_any_key_round_trips(pk: str, sk: str) -> None:
    # Given any string key
    last_key = {"PK": {"S": pk}, "SK": {"S": sk}}
    # When it is encoded and decoded for its own partition
    # Then the same key comes back
    assert decode_cursor(encode_cursor(last_key), expect={"PK": pk}) == last_key


@settings(max_examples=100, deadline=None)
@given(pk=key_text, other=key_text, sk=key_text)
def test_property_a_cursor_never_opens_another_partition(pk: str, other: str, sk: str) -> None:
    # Given a cursor of one partition and any other partition
    cursor = encode_cursor({"PK": {"S": pk}, "SK": {"S": sk}})
    # When it is decoded for a different partition
    # Then it is refused
    if other == pk:
        other = pk + "x"
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, expect={"PK": other})
