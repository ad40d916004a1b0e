"""Jifen's bearer tokens and the tenant-signed member login JWT."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.auth import tokens
from chalicelib.core.errors import Unauthorized

KEY = "jifen-signing-key-" + "k" * 48
OTHER_KEY = "someone-elses-key-" + "z" * 32
NOW = 1_750_000_000
# PyJWT also checks exp against the wall clock, so Jifen-token tests live in real time (see the clock test below).
WALL_NOW = int(time.time())
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
CLAIMS = {"sub": "m_1", "ten": "acme", "app": "app_1", "oid": "openid-1", "dev": "dev-1"}


def operator_payload(**overrides: Any) -> dict[str, Any]:
    """The claims of a genuine operator token, before signing."""
    payload = {"sub": "owner", "ten": "acme", "role": "owner", "iss": "jifen", "aud": "jifen:operator"}
    return {**payload, "iat": WALL_NOW, "exp": WALL_NOW + 3600, **overrides}


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


# --- Jifen's own tokens ---------------------------------------------------------------------------


def test_issued_token_verifies_with_its_claims() -> None:
    # Given a member token issued now for two hours
    token = tokens.issue(KEY, "member", CLAIMS, WALL_NOW, 7200)
    # When it is verified a minute later as a member token
    claims = tokens.verify(KEY, "member", token, WALL_NOW + 60)
    # Then the claims come back, with the type in the audience and the lifetime in exp
    assert {k: claims[k] for k in CLAIMS} == CLAIMS
    assert claims["aud"] == "jifen:member"
    assert claims["iss"] == "jifen"
    assert claims["exp"] - claims["iat"] == 7200


def test_token_is_valid_until_the_second_before_exp() -> None:
    # Given a token that lives 100 seconds
    token = tokens.issue(KEY, "operator", {"sub": "owner", "ten": "acme", "role": "owner"}, WALL_NOW, 100)
    # When it is verified one second before and exactly at its expiry
    tokens.verify(KEY, "operator", token, WALL_NOW + 99)
    # Then at exp it is expired
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(KEY, "operator", token, WALL_NOW + 100)


def test_expired_token_is_rejected_by_jifens_clock() -> None:
    # Given a token issued long ago that the wall clock would also call expired
    token = tokens.issue(KEY, "member", CLAIMS, WALL_NOW - 10_000, 60)
    # When it is verified
    # Then it is rejected as expired
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(KEY, "member", token, WALL_NOW)


def test_validity_is_decided_by_the_given_clock_not_the_wall_clock() -> None:
    # Given a token issued by Jifen's clock a year ago, valid for an hour
    token = tokens.issue(KEY, "member", CLAIMS, WALL_NOW - 365 * 86_400, 3600)
    # When it is verified by that same clock ten minutes after issue (a test clock, a replayed job)
    claims = tokens.verify(KEY, "member", token, WALL_NOW - 365 * 86_400 + 600)
    # Then Jifen's clock decides, as tokens.verify promises: still valid
    assert claims["sub"] == CLAIMS["sub"]


def test_token_still_valid_by_wall_clock_is_expired_by_jifens_clock() -> None:
    # Given a token valid for an hour from the real now
    wall_now = int(time.time())
    token = tokens.issue(KEY, "member", CLAIMS, wall_now, 3600)
    # When Jifen's clock says two hours have passed
    # Then Jifen's clock decides: expired
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(KEY, "member", token, wall_now + 7200)


@pytest.mark.parametrize(
    ("issued_as", "used_as"),
    [("member", "operator"), ("operator", "member"), ("verifier", "operator"), ("member", "verifier"), ("operator", "verifier")],
)
def test_token_of_one_type_is_rejected_as_another(issued_as: tokens.TokenType, used_as: tokens.TokenType) -> None:
    # Given a genuine token of one type
    token = tokens.issue(KEY, issued_as, {"sub": "x", "ten": "acme", "role": "owner", "store": "st_1"}, WALL_NOW, 3600)
    # When it is presented where another type is required
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, used_as, token, WALL_NOW)


def test_token_signed_with_another_key_is_rejected() -> None:
    # Given a token that looks right but was signed with a different key
    token = tokens.issue(OTHER_KEY, "operator", {"sub": "owner", "ten": "acme", "role": "owner"}, WALL_NOW, 3600)
    # When Jifen verifies it with its own key
    # Then it is rejected
    with pytest.raises(Unauthorized, match="not valid"):
        tokens.verify(KEY, "operator", token, WALL_NOW)


def test_alg_none_token_is_rejected() -> None:
    # Given an attacker's unsigned token (alg "none") with owner claims
    payload = operator_payload()
    token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(payload)}."
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", token, WALL_NOW)


def test_alg_none_header_with_a_real_signature_is_rejected() -> None:
    # Given a genuine token whose header was rewritten to alg "none" (signature left in place)
    genuine = tokens.issue(KEY, "operator", {"sub": "owner", "ten": "acme", "role": "owner"}, WALL_NOW, 3600)
    _, payload, signature = genuine.split(".")
    token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", token, WALL_NOW)


def test_hs512_token_with_the_right_key_is_rejected() -> None:
    # Given a token signed with the right key but another algorithm than the one Jifen issues
    token = jwt.encode(operator_payload(), KEY, algorithm="HS512")
    # When it is verified
    # Then it is rejected (only HS256 is accepted)
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", token, WALL_NOW)


def test_tampered_payload_is_rejected() -> None:
    # Given a viewer's genuine token whose payload was edited to say owner
    genuine = tokens.issue(KEY, "operator", {"sub": "v", "ten": "acme", "role": "viewer"}, WALL_NOW, 3600)
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "owner"
    token = f"{header}.{b64url(claims)}.{signature}"
    # When it is verified
    # Then the signature no longer matches
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", token, WALL_NOW)


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud"])
def test_token_missing_a_required_claim_is_rejected(missing: str) -> None:
    # Given a correctly signed token lacking one of exp, iat, iss, aud
    payload = operator_payload()
    del payload[missing]
    token = jwt.encode(payload, KEY, algorithm="HS256")
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", token, WALL_NOW)


def test_token_from_another_issuer_is_rejected() -> None:
    # Given a correctly signed token whose issuer is not Jifen
    token = jwt.encode(operator_payload(iss="evil"), KEY, algorithm="HS256")
    # When it is verified
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", token, WALL_NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "....", "eyJhbGciOiJIUzI1NiJ9.e30"])
def test_garbage_token_is_rejected(garbage: str) -> None:
    # Given a string that is not a JWT at all
    # When it is verified
    # Then it is rejected as not valid (not a crash)
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "member", garbage, WALL_NOW)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_property_any_single_character_change_breaks_the_token(data: st.DataObject) -> None:
    # Given a genuine operator token
    token = tokens.issue(KEY, "operator", {"sub": "owner", "ten": "acme", "role": "owner"}, WALL_NOW, 3600)
    header, payload, signature = token.split(".")
    # When one character of its payload or signature is replaced (not a segment's last one, whose low bits are padding)
    part = data.draw(st.sampled_from(["payload", "signature"]))
    segment = payload if part == "payload" else signature
    index = data.draw(st.integers(min_value=0, max_value=len(segment) - 2))
    other = data.draw(st.sampled_from(B64URL_ALPHABET).filter(lambda c: c != segment[index]))
    changed_segment = segment[:index] + other + segment[index + 1 :]
    changed = f"{header}.{changed_segment}.{signature}" if part == "payload" else f"{header}.{payload}.{changed_segment}"
    # Then it no longer verifies
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, "operator", changed, WALL_NOW)


# --- the tenant-signed login token ---------------------------------------------------------------

SECRET = "tenant-login-secret-0123456789-abcdefghij"


def login_jwt(secret: str = SECRET, **overrides: Any) -> str:
    claims: dict[str, Any] = {"sub": "openid-1", "aud": "jifen", "iat": NOW, "exp": NOW + 300, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_valid_login_token_gives_its_claims() -> None:
    # Given a login JWT signed by the tenant with nickname and birthday
    token = login_jwt(nickname="Ann", birthday="1990-02-28", invite_code="INV1")
    # When Jifen verifies it
    claims = tokens.verify_login_token([SECRET], token, NOW + 10)
    # Then the openid and the optional claims are read
    assert (claims.sub, claims.nickname, claims.birthday, claims.invite_code) == ("openid-1", "Ann", "1990-02-28", "INV1")


def test_login_token_signed_with_previous_secret_verifies() -> None:
    # Given the secret was rotated and the backend still signs with the old one
    token = login_jwt(secret="old-login-secret-0123456789-abcdefghijklm")
    # When Jifen verifies it against both accepted secrets
    claims = tokens.verify_login_token([SECRET, "old-login-secret-0123456789-abcdefghijklm"], token, NOW)
    # Then it is accepted
    assert claims.sub == "openid-1"


def test_login_token_with_wrong_secret_is_rejected() -> None:
    # Given a login JWT signed with another app's secret
    token = login_jwt(secret="another-apps-secret-0123456789-abcdefghijk")
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized, match="not valid"):
        tokens.verify_login_token([SECRET], token, NOW)


@pytest.mark.parametrize("aud", ["jifen:member", "other", "JIFEN"])
def test_login_token_with_wrong_audience_is_rejected(aud: str) -> None:
    # Given a login JWT whose audience is not exactly "jifen"
    token = login_jwt(aud=aud)
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify_login_token([SECRET], token, NOW)


@pytest.mark.parametrize("missing", ["sub", "aud", "iat", "exp"])
def test_login_token_missing_a_required_claim_is_rejected(missing: str) -> None:
    # Given a login JWT lacking one of sub, aud, iat, exp
    token = login_jwt(**{missing: None})
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify_login_token([SECRET], token, NOW)


def test_login_token_with_empty_sub_is_rejected() -> None:
    # Given a login JWT with an empty openid
    token = login_jwt(sub="")
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify_login_token([SECRET], token, NOW)


def test_login_token_living_exactly_ten_minutes_is_accepted() -> None:
    # Given a login JWT with exp exactly 600 s after iat
    token = login_jwt(exp=NOW + 600)
    # When Jifen verifies it
    # Then it is accepted
    assert tokens.verify_login_token([SECRET], token, NOW).sub == "openid-1"


@pytest.mark.parametrize("lifetime", [601, 3600, 86_400 * 365])
def test_login_token_living_longer_than_ten_minutes_is_rejected(lifetime: int) -> None:
    # Given a login JWT whose exp is more than 600 s after its iat
    token = login_jwt(exp=NOW + lifetime)
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized, match="10 minutes"):
        tokens.verify_login_token([SECRET], token, NOW)


def test_expired_login_token_is_rejected() -> None:
    # Given a login JWT that expired a minute ago (beyond the 30 s leeway)
    token = login_jwt(iat=NOW - 360, exp=NOW - 60)
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify_login_token([SECRET], token, NOW)


def test_login_token_within_leeway_of_expiry_is_accepted() -> None:
    # Given a login JWT that expired 10 s ago (clock skew between tenant and Jifen)
    token = login_jwt(iat=NOW - 300, exp=NOW - 10)
    # When Jifen verifies it
    # Then the 30 s leeway still accepts it
    assert tokens.verify_login_token([SECRET], token, NOW).sub == "openid-1"


def test_login_token_issued_in_the_future_is_rejected() -> None:
    # Given a login JWT whose iat is five minutes ahead of Jifen's clock
    token = login_jwt(iat=NOW + 300, exp=NOW + 600)
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized, match="future"):
        tokens.verify_login_token([SECRET], token, NOW)


@pytest.mark.parametrize("birthday", ["1990-2-28", "1990-02-30", "28/02/1990", "19900228", "tomorrow", "1990-02-28T00:00:00"])
def test_login_token_with_bad_birthday_is_rejected(birthday: str) -> None:
    # Given a login JWT whose birthday is not a real YYYY-MM-DD date
    token = login_jwt(birthday=birthday)
    # When Jifen verifies it
    # Then it is rejected as malformed
    with pytest.raises(Unauthorized, match="malformed"):
        tokens.verify_login_token([SECRET], token, NOW)


@pytest.mark.parametrize("claim", [{"nickname": "n" * 65}, {"invite_code": "i" * 33}, {"sub": "s" * 129}, {"iat": "yesterday"}])
def test_login_token_with_oversized_or_mistyped_claims_is_rejected(claim: dict[str, Any]) -> None:
    # Given a login JWT with a claim too long or of the wrong type
    token = login_jwt(**claim)
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify_login_token([SECRET], token, NOW)


def test_alg_none_login_token_is_rejected() -> None:
    # Given an unsigned login JWT (alg "none") naming any openid
    token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url({'sub': 'victim', 'aud': 'jifen', 'iat': NOW, 'exp': NOW + 60})}."
    # When Jifen verifies it
    # Then it is rejected
    with pytest.raises(Unauthorized):
        tokens.verify_login_token([SECRET], token, NOW)


def test_login_token_with_no_accepted_secret_is_rejected() -> None:
    # Given an app with no accepted login secret
    # When a login JWT is verified
    # Then it is rejected rather than accepted unsigned
    with pytest.raises(Unauthorized):
        tokens.verify_login_token([], login_jwt(), NOW)
