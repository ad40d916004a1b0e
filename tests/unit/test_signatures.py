"""Server-to-server HMAC and generic webhook signatures, checked against the formats fixed in API.md."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.auth import signatures
from chalicelib.core.errors import Unauthorized

KEY = "server-key-0123456789abcdef"
OTHER_KEY = "server-key-fedcba9876543210"
NOW = 1_750_000_000
WINDOW = 300
NONCE = "n" * 16
PATH = "/v1/server/points/grants"
BODY = b'{"openid":"o-1","points":10,"reference":"r-1","reason":"test"}'


def reference_signature(key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """API.md, written out independently of the code under test."""
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify(
    *,
    keys: tuple[str, ...] = (KEY,),
    method: str = "POST",
    path: str = PATH,
    timestamp: str = str(NOW),
    nonce: str = NONCE,
    signature: str | None = None,
    body: bytes = BODY,
    now: int = NOW,
) -> None:
    if signature is None:
        signature = reference_signature(KEY, "POST", PATH, str(NOW), NONCE, BODY)
    signatures.verify_server_request(list(keys), method, path, timestamp, nonce, signature, body, now, WINDOW)


# --- server requests --------------------------------------------------------------------------------


def test_string_to_sign_is_the_api_md_format() -> None:
    # Given a request's parts
    # When the string to sign is built
    message = signatures.server_string_to_sign("post", PATH, "1750000000", NONCE, BODY)
    # Then it is METHOD\nPATH\nTIMESTAMP\nNONCE\nhex(sha256(body)), with the method upper-cased
    assert message == f"POST\n{PATH}\n1750000000\n{NONCE}\n{hashlib.sha256(BODY).hexdigest()}"


def test_signature_matches_an_independent_implementation() -> None:
    # Given a tenant backend that signs by following API.md literally
    expected = reference_signature(KEY, "GET", "/v1/server/members/alice", "1750000000", NONCE, b"")
    # When Jifen's signer signs the same request
    actual = signatures.sign_server_request(KEY, "GET", "/v1/server/members/alice", "1750000000", NONCE, b"")
    # Then both produce the same hex HMAC
    assert actual == expected


def test_correctly_signed_request_verifies() -> None:
    # Given a request signed by the tenant's backend with the app's server key
    # When it is verified at the moment it was signed
    # Then no error is raised
    verify()


def test_upper_case_hex_signature_is_accepted() -> None:
    # Given the same signature written in upper-case hex
    signature = reference_signature(KEY, "POST", PATH, str(NOW), NONCE, BODY).upper()
    # When it is verified
    # Then it is accepted (hex case carries no meaning)
    verify(signature=signature)


def test_any_of_the_accepted_keys_verifies() -> None:
    # Given a rotated key: the new one and the old one in its grace period
    signature = reference_signature(OTHER_KEY, "POST", PATH, str(NOW), NONCE, BODY)
    # When a request signed with the old key is verified against both
    # Then it is accepted
    verify(keys=(KEY, OTHER_KEY), signature=signature)


@pytest.mark.parametrize("skew", [WINDOW, -WINDOW])
def test_timestamp_at_the_window_edge_is_accepted(skew: int) -> None:
    # Given a request signed exactly 300 s before or after now
    timestamp = str(NOW - skew)
    signature = reference_signature(KEY, "POST", PATH, timestamp, NONCE, BODY)
    # When it is verified
    # Then it is still fresh
    verify(timestamp=timestamp, signature=signature)


@pytest.mark.parametrize("skew", [WINDOW + 1, -(WINDOW + 1), 86_400, -86_400])
def test_stale_timestamp_is_rejected_either_side(skew: int) -> None:
    # Given a correctly signed request whose timestamp is more than 300 s away from now
    timestamp = str(NOW - skew)
    signature = reference_signature(KEY, "POST", PATH, timestamp, NONCE, BODY)
    # When it is verified
    # Then it is rejected as outside the window
    with pytest.raises(Unauthorized, match="window"):
        verify(timestamp=timestamp, signature=signature)


@pytest.mark.parametrize("timestamp", ["", "abc", "-1750000000", "1750000000.5", "1" * 13, " 1750000000"])
def test_timestamp_that_is_not_unix_seconds_is_rejected(timestamp: str) -> None:
    # Given a request whose timestamp is not plain unix seconds, signed over that very text
    signature = reference_signature(KEY, "POST", PATH, timestamp, NONCE, BODY)
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized):
        verify(timestamp=timestamp, signature=signature)


@pytest.mark.parametrize("nonce", ["", "n" * 15, "n" * 129, "nonce-with-\n-newline", "nonce-non-ascii-é-xx"])
def test_bad_nonce_is_rejected_even_when_signed(nonce: str) -> None:
    # Given a correctly signed request whose nonce is too short, too long or not printable ASCII
    signature = reference_signature(KEY, "POST", PATH, str(NOW), nonce, BODY)
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized, match="Nonce"):
        verify(nonce=nonce, signature=signature)


def test_sixteen_character_nonce_is_enough() -> None:
    # Given a request with a nonce of exactly 16 characters
    nonce = "abcdefghijklmnop"
    signature = reference_signature(KEY, "POST", PATH, str(NOW), nonce, BODY)
    # When it is verified
    # Then it is accepted
    verify(nonce=nonce, signature=signature)


def test_wrong_key_is_rejected() -> None:
    # Given a request signed with a key that is not the app's
    signature = reference_signature(OTHER_KEY, "POST", PATH, str(NOW), NONCE, BODY)
    # When it is verified against the app's key
    # Then it is rejected
    with pytest.raises(Unauthorized, match="Signature"):
        verify(signature=signature)


def test_no_accepted_keys_rejects_everything() -> None:
    # Given an app with no accepted key at all
    # When a request is verified
    # Then it is rejected rather than waved through
    with pytest.raises(Unauthorized):
        verify(keys=())


@pytest.mark.parametrize(
    "tampered",
    [
        {"body": BODY.replace(b"10", b"99")},
        {"body": BODY + b" "},
        {"body": b""},
        {"path": "/v1/server/points/deductions"},
        {"path": PATH + "?x=1"},
        {"method": "PUT"},
        {"nonce": "m" * 16},
        {"timestamp": str(NOW - 1)},
    ],
    ids=["body-value", "body-whitespace", "body-empty", "path", "path-query", "method", "nonce", "timestamp"],
)
def test_tampered_request_is_rejected(tampered: dict[str, object]) -> None:
    # Given a request signed over the original method, path, timestamp, nonce and body
    # When one of them is changed in transit
    # Then the signature no longer matches
    with pytest.raises(Unauthorized, match="Signature"):
        verify(**tampered)  # type: ignore[arg-type]


def test_truncated_or_empty_signature_is_rejected() -> None:
    # Given a valid signature with its last character dropped, and an empty one
    good = reference_signature(KEY, "POST", PATH, str(NOW), NONCE, BODY)
    # When each is verified
    # Then both are rejected
    for signature in (good[:-1], ""):
        with pytest.raises(Unauthorized):
            verify(signature=signature)


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE"]),
    path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80).map(lambda p: "/" + p),
    body=st.binary(max_size=512),
    nonce=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=16, max_size=64),
    skew=st.integers(min_value=-WINDOW, max_value=WINDOW),
)
def test_property_any_signed_request_verifies(method: str, path: str, body: bytes, nonce: str, skew: int) -> None:
    # Given any method, path, body and nonce signed within the window by the tenant's backend
    timestamp = str(NOW + skew)
    signature = reference_signature(KEY, method, path, timestamp, nonce, body)
    # When Jifen verifies it
    # Then it is accepted
    signatures.verify_server_request([KEY], method, path, timestamp, nonce, signature, body, NOW, WINDOW)


@settings(max_examples=80, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=256),
    data=st.data(),
)
def test_property_any_single_byte_change_of_the_body_fails(body: bytes, data: st.DataObject) -> None:
    # Given a signed body
    signature = reference_signature(KEY, "POST", PATH, str(NOW), NONCE, body)
    # When any one byte of it is changed to any other value
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    replacement = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != body[index]))
    changed = body[:index] + bytes([replacement]) + body[index + 1 :]
    # Then verification fails
    with pytest.raises(Unauthorized):
        signatures.verify_server_request([KEY], "POST", PATH, str(NOW), NONCE, signature, changed, NOW, WINDOW)


@settings(max_examples=60, deadline=None)
@given(
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz/", min_size=2, max_size=60).map(lambda p: "/" + p),
    data=st.data(),
)
def test_property_any_single_character_change_of_the_path_fails(path: str, data: st.DataObject) -> None:
    # Given a signed path
    signature = reference_signature(KEY, "GET", path, str(NOW), NONCE, b"")
    # When one character of it is replaced by a different one
    index = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    other = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz/0123456789").filter(lambda c: c != path[index]))
    changed = path[:index] + other + path[index + 1 :]
    # Then verification fails
    with pytest.raises(Unauthorized):
        signatures.verify_server_request([KEY], "GET", changed, str(NOW), NONCE, signature, b"", NOW, WINDOW)


# --- generic webhooks ---------------------------------------------------------------------------------

SECRET = "webhook-secret-0123456789"
OTHER_SECRET = "webhook-secret-9876543210"
EVENT = b'{"id":"evt_1","type":"payment.succeeded"}'


def reference_webhook_mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(header: str, *, body: bytes = EVENT, secrets: tuple[str, ...] = (SECRET,), now: int = NOW) -> None:
    signatures.verify_webhook(list(secrets), header, body, now, WINDOW)


def test_webhook_header_is_the_api_md_format() -> None:
    # Given a provider signing an event at NOW
    # When Jifen's signer builds the header
    header = signatures.sign_webhook(SECRET, str(NOW), EVENT)
    # Then it is t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
    assert header == f"t={NOW},v1={reference_webhook_mac(SECRET, str(NOW), EVENT)}"


def test_valid_webhook_signature_verifies() -> None:
    # Given an event signed by the provider with the app's webhook secret
    header = f"t={NOW},v1={reference_webhook_mac(SECRET, str(NOW), EVENT)}"
    # When it is verified
    # Then no error is raised
    verify_webhook(header)


def test_webhook_header_with_spaces_after_commas_verifies() -> None:
    # Given a header written with a space after the comma
    header = f"t={NOW}, v1={reference_webhook_mac(SECRET, str(NOW), EVENT)}"
    # When it is verified
    # Then it is accepted
    verify_webhook(header)


def test_webhook_signed_with_wrong_secret_is_rejected() -> None:
    # Given an event signed with another app's secret
    header = f"t={NOW},v1={reference_webhook_mac(OTHER_SECRET, str(NOW), EVENT)}"
    # When it is verified against this app's secret
    # Then it is rejected
    with pytest.raises(Unauthorized, match="does not match"):
        verify_webhook(header)


def test_webhook_with_tampered_body_is_rejected() -> None:
    # Given a valid header for one body
    header = f"t={NOW},v1={reference_webhook_mac(SECRET, str(NOW), EVENT)}"
    # When a different body arrives with it
    # Then it is rejected
    with pytest.raises(Unauthorized, match="does not match"):
        verify_webhook(header, body=EVENT.replace(b"evt_1", b"evt_2"))


@pytest.mark.parametrize("skew", [WINDOW + 1, -(WINDOW + 1)])
def test_stale_webhook_is_rejected_either_side(skew: int) -> None:
    # Given an event correctly signed more than 300 s away from now
    timestamp = str(NOW - skew)
    header = f"t={timestamp},v1={reference_webhook_mac(SECRET, timestamp, EVENT)}"
    # When it is verified
    # Then it is rejected as outside the window
    with pytest.raises(Unauthorized, match="window"):
        verify_webhook(header)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1=abc",
        f"t={NOW}",
        f"t={NOW},v1=",
        f"t={NOW},t={NOW},v1=" + "0" * 64,
        f"t=,v1={'0' * 64}",
        f"t=soon,v1={'0' * 64}",
        f"t={NOW};v1={'0' * 64}",
    ],
    ids=["empty", "garbage", "no-t", "no-v1", "empty-v1", "two-t", "empty-t", "word-t", "semicolon"],
)
def test_malformed_webhook_header_is_rejected(header: str) -> None:
    # Given a signature header that is not t=..,v1=..
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized):
        verify_webhook(header)


def test_webhook_with_several_v1_is_accepted_when_one_matches() -> None:
    # Given a header carrying two v1 values, only the second of which is right (a provider mid-rotation)
    good = reference_webhook_mac(SECRET, str(NOW), EVENT)
    wrong = reference_webhook_mac(OTHER_SECRET, str(NOW), EVENT)
    # When it is verified
    # Then it is accepted
    verify_webhook(f"t={NOW},v1={wrong},v1={good}")


def test_webhook_with_several_v1_is_rejected_when_none_matches() -> None:
    # Given a header carrying several v1 values, none made with the app's secret
    wrong = reference_webhook_mac(OTHER_SECRET, str(NOW), EVENT)
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized, match="does not match"):
        verify_webhook(f"t={NOW},v1={wrong},v1={'0' * 64},v1=zz")


def test_webhook_signed_with_previous_secret_verifies_during_rotation() -> None:
    # Given the secret was rotated and the old one is still accepted
    header = f"t={NOW},v1={reference_webhook_mac(OTHER_SECRET, str(NOW), EVENT)}"
    # When an event signed with the old secret is verified against both
    # Then it is accepted
    verify_webhook(header, secrets=(SECRET, OTHER_SECRET))


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=512), skew=st.integers(min_value=-WINDOW, max_value=WINDOW))
def test_property_any_signed_webhook_verifies_and_any_other_body_fails(body: bytes, skew: int) -> None:
    # Given any body signed within the window
    timestamp = str(NOW + skew)
    header = signatures.sign_webhook(SECRET, timestamp, body)
    # When it is verified as sent, and with one extra byte
    signatures.verify_webhook([SECRET], header, body, NOW, WINDOW)
    # Then the original passes and the changed body fails
    with pytest.raises(Unauthorized):
        signatures.verify_webhook([SECRET], header, body + b"x", NOW, WINDOW)
