"""Every bad input gets a 4xx envelope and writes nothing.

Bad requests change nothing by definition, so the cases share one moto table (module scope) and each
one compares the whole table before and after: a case that wrote anything would show up here.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import jwt
import pytest
from moto import mock_aws

from chalicelib.core.auth import tokens
from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.cursors import encode_cursor
from chalicelib.tenancy import accounts
from tests.conftest import OWNER, bearer, call, table_items
from tests.support import login_token

MAX_BODY = 64 * 1024


@dataclass
class World:
    api: Any
    aws: Any
    owner_token: str
    app_id: str
    login_secret: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """Given acme, its owner logged in and one app, in a table shared by this module's read-only cases."""
    from chalice.test import Client

    from app import app

    with mock_aws():
        client = boto3.client("dynamodb")
        schema.create_table(client, os.environ["JIFEN_TABLE"])
        config_cache().clear()
        with Client(app) as api:
            accounts.create_tenant("acme", "Acme", *OWNER)
            login = call(api, "POST", "/v1/auth/operator", {"tenant_id": "acme", "username": OWNER[0], "password": OWNER[1]})
            assert login.status_code == 200, login.json_body
            token = login.json_body["token"]
            created = call(api, "POST", "/v1/admin/apps", {"name": "Acme App", "points_rate": 100}, bearer(token))
            assert created.status_code == 201, created.json_body
            yield World(api, client, token, created.json_body["app"]["app_id"], created.json_body["secrets"]["login_secret"])
        config_cache().clear()


def snapshot(aws: Any) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(aws))


def assert_refused(world: World, method: str, path: str, *, status: int, code: str, field: str | None = None, **kwargs: Any) -> Any:
    """Send the request; it must be refused with the envelope and leave the table exactly as it was."""
    before = snapshot(world.aws)
    response = call(world.api, method, path, **kwargs)
    assert response.status_code == status, response.json_body
    assert isinstance(response.json_body, dict) and set(response.json_body) == {"error"}, response.json_body
    error = response.json_body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    if code == "VALIDATION_FAILED":
        assert error["details"], error
        assert all(set(d) == {"field", "problem"} for d in error["details"])
        if field is not None:
            assert field in [d["field"] for d in error["details"]], error["details"]
    assert snapshot(world.aws) == before
    return response


# --- bodies ---------------------------------------------------------------------------------------------------

MALFORMED_BODIES = [
    pytest.param(b'{"name": "A", "points_rate": ', "body", id="truncated-json"),
    pytest.param(b'{"name": "A", "points_rate": 1} trailing', "body", id="trailing-garbage"),
    pytest.param(b"{'name': 'A'}", "body", id="single-quotes"),
    pytest.param(b"\xff\xfe\x00{", "body", id="not-utf8"),
    pytest.param(b"[]", "body", id="empty-array"),
    pytest.param(b'[{"name": "A", "points_rate": 1}]', "body", id="array-of-object"),
    pytest.param(b'"just a string"', "body", id="string"),
    pytest.param(b"42", "body", id="number"),
    pytest.param(b"null", "body", id="null"),
    pytest.param(b"true", "body", id="boolean"),
    pytest.param(b"[" * 30_000 + b"]" * 30_000, "body", id="deeply-nested-arrays"),
    pytest.param(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "body", id="deeply-nested-objects"),
    pytest.param(b"1" * 5000, "body", id="number-too-long"),
]

TARGETS = [
    pytest.param("/v1/admin/apps", True, id="create-app"),
    pytest.param("/v1/auth/member", False, id="member-login"),
    pytest.param("/v1/auth/operator", False, id="operator-login"),
    pytest.param("/v1/auth/verifier", False, id="verifier-login"),
]


@pytest.mark.parametrize(("path", "as_owner"), TARGETS)
@pytest.mark.parametrize(("raw", "field"), MALFORMED_BODIES)
def test_body_that_is_not_a_json_object_is_refused(world: World, path: str, as_owner: bool, raw: bytes, field: str) -> None:
    # Given a POST whose body is malformed JSON, or valid JSON that is not an object
    headers = bearer(world.owner_token) if as_owner else None
    # When it is sent
    # Then it is 400 VALIDATION_FAILED on the body, and nothing is written
    assert_refused(world, "POST", path, raw=raw, headers=headers, status=400, code="VALIDATION_FAILED", field=field)


@pytest.mark.parametrize(("path", "as_owner"), TARGETS)
def test_body_over_64_kib_is_413(world: World, path: str, as_owner: bool) -> None:
    # Given a body one byte over 64 KiB (valid JSON, so only its size is wrong)
    prefix, suffix = b'{"points_rate": 1, "name": "', b'"}'
    raw = prefix + b"n" * (MAX_BODY + 1 - len(prefix) - len(suffix)) + suffix
    assert len(raw) == MAX_BODY + 1
    headers = bearer(world.owner_token) if as_owner else None
    # When it is sent
    # Then it is 413 PAYLOAD_TOO_LARGE and nothing is written
    assert_refused(world, "POST", path, raw=raw, headers=headers, status=413, code="PAYLOAD_TOO_LARGE")


def test_body_of_exactly_64_kib_is_not_too_large(world: World) -> None:
    # Given a create-app body of exactly 64 KiB (its name far too long)
    prefix, suffix = b'{"points_rate": 1, "name": "', b'"}'
    raw = prefix + b"n" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(raw) == MAX_BODY
    # When it is sent
    # Then the size is accepted and the name is what is refused
    response = assert_refused(
        world, "POST", "/v1/admin/apps", raw=raw, headers=bearer(world.owner_token), status=400, code="VALIDATION_FAILED", field="name"
    )
    # And the 64 KiB value is not echoed back
    assert len(json.dumps(response.json_body)) < 2000


APP = {"name": "New App", "points_rate": 100}

BAD_APPS = [
    pytest.param({**APP, "points_rate": "100"}, "points_rate", id="rate-as-string"),
    pytest.param({**APP, "points_rate": True}, "points_rate", id="rate-as-bool"),
    pytest.param({**APP, "points_rate": 1.5}, "points_rate", id="rate-as-float"),
    pytest.param({**APP, "points_rate": 100.0}, "points_rate", id="rate-as-whole-float"),
    pytest.param({**APP, "points_rate": None}, "points_rate", id="rate-null"),
    pytest.param({**APP, "points_rate": [100]}, "points_rate", id="rate-as-list"),
    pytest.param({**APP, "points_rate": 0}, "points_rate", id="rate-zero"),
    pytest.param({**APP, "points_rate": -5}, "points_rate", id="rate-negative"),
    pytest.param({**APP, "points_rate": 10**12}, "points_rate", id="rate-huge"),
    pytest.param({**APP, "points_rate": 10**400}, "points_rate", id="rate-astronomical"),
    pytest.param({**APP, "name": 123}, "name", id="name-as-number"),
    pytest.param({**APP, "name": ""}, "name", id="name-empty"),
    pytest.param({**APP, "name": "n" * 10_000}, "name", id="name-10k"),
    pytest.param({"points_rate": 1}, "name", id="name-missing"),
    pytest.param({"name": "A"}, "points_rate", id="rate-missing"),
    pytest.param({}, None, id="empty-object"),
    pytest.param({**APP, "tenant_id": "globex"}, "tenant_id", id="unknown-tenant_id"),
    pytest.param({**APP, "app_id": "app_chosen"}, "app_id", id="unknown-app_id"),
    pytest.param({**APP, "version": 7}, "version", id="unknown-version"),
    pytest.param({**APP, "secrets": {"login_secret": "mine"}}, "secrets", id="unknown-secrets"),
    pytest.param({**APP, "time_zone": "Mars/Olympus"}, "time_zone", id="tz-unknown"),
    pytest.param({**APP, "time_zone": "T" * 10_000}, "time_zone", id="tz-10k"),
    pytest.param({**APP, "time_zone": 8}, "time_zone", id="tz-as-number"),
    pytest.param({**APP, "expiry_policy": "never"}, "expiry_policy", id="policy-as-string"),
    pytest.param({**APP, "expiry_policy": {"type": "never", "n": 3}}, "expiry_policy", id="policy-never-with-n"),
    pytest.param({**APP, "expiry_policy": {"type": "rolling_days", "n": 0}}, "expiry_policy", id="policy-rolling-0"),
    pytest.param({**APP, "expiry_policy": {"type": "end_of_nth_month", "n": 121}}, "expiry_policy", id="policy-month-121"),
    pytest.param({**APP, "expiry_policy": {"type": "end_of_nth_month", "n": "3"}}, None, id="policy-n-as-string"),
    pytest.param({**APP, "daily_earn_cap": 0}, "daily_earn_cap", id="cap-zero"),
    pytest.param({**APP, "daily_earn_cap": "5"}, "daily_earn_cap", id="cap-as-string"),
    pytest.param({**APP, "daily_earn_cap": 10**10}, "daily_earn_cap", id="cap-huge"),
    pytest.param({**APP, "login_mode": "magic"}, "login_mode", id="mode-unknown"),
    pytest.param({**APP, "login_mode": "callback"}, None, id="callback-without-url"),
    pytest.param({**APP, "login_mode": "callback", "login_callback_url": "http://evil.test/cb"}, None, id="callback-http"),
    pytest.param({**APP, "login_callback_url": "javascript:alert(1)"}, None, id="callback-javascript"),
    pytest.param({**APP, "login_callback_url": "https://" + "a" * 2000}, "login_callback_url", id="callback-url-2k"),
]


@pytest.mark.parametrize(("body", "field"), BAD_APPS)
def test_bad_create_app_body_is_refused(world: World, body: dict[str, Any], field: str | None) -> None:
    # Given a create-app body with a wrong type, out-of-range value, missing or unknown field
    # When the owner sends it
    # Then it is 400 naming the field, and no app is written
    assert_refused(
        world, "POST", "/v1/admin/apps", body=body, headers=bearer(world.owner_token), status=400, code="VALIDATION_FAILED", field=field
    )


def test_nan_is_not_a_points_rate(world: World) -> None:
    # Given a body using JSON's non-standard NaN literal
    raw = b'{"name": "A", "points_rate": NaN}'
    # When it is sent
    # Then it is refused and nothing is written
    assert_refused(world, "POST", "/v1/admin/apps", raw=raw, headers=bearer(world.owner_token), status=400, code="VALIDATION_FAILED")


MEMBER = {"device_id": "dev-1"}

BAD_MEMBER_LOGINS = [
    pytest.param({**MEMBER, "app_id": 123, "login_token": "t"}, "app_id", id="app-as-number"),
    pytest.param({**MEMBER, "app_id": "app#M#x", "login_token": "t"}, "app_id", id="app-with-key-separator"),
    pytest.param({**MEMBER, "app_id": "a" * 65, "login_token": "t"}, "app_id", id="app-too-long"),
    pytest.param({**MEMBER, "login_token": "t"}, "app_id", id="app-missing"),
    pytest.param({**MEMBER, "app_id": "{app}", "login_token": 123}, "login_token", id="token-as-number"),
    pytest.param({**MEMBER, "app_id": "{app}", "login_token": ""}, "login_token", id="token-empty"),
    pytest.param({**MEMBER, "app_id": "{app}", "login_token": "t" * 5000}, "login_token", id="token-5k"),
    pytest.param({**MEMBER, "app_id": "{app}"}, None, id="no-credential"),
    pytest.param({**MEMBER, "app_id": "{app}", "login_token": "t", "code": "c"}, None, id="both-credentials"),
    pytest.param({**MEMBER, "app_id": "{app}", "login_token": "t", "openid": "victim"}, "openid", id="unknown-openid"),
    pytest.param({**MEMBER, "app_id": "{app}", "login_token": "t", "tenant_id": "globex"}, "tenant_id", id="unknown-tenant"),
    pytest.param({"app_id": "{app}", "login_token": "t"}, "device_id", id="device-missing"),
    pytest.param({"app_id": "{app}", "login_token": "t", "device_id": ["d"]}, "device_id", id="device-as-list"),
    pytest.param({"app_id": "{app}", "login_token": "t", "device_id": "d" * 200}, "device_id", id="device-200"),
    pytest.param({"app_id": "{app}", "code": True, "device_id": "d"}, "code", id="code-as-bool"),
]


@pytest.mark.parametrize(("template", "field"), BAD_MEMBER_LOGINS)
def test_bad_member_login_body_is_refused(world: World, template: dict[str, Any], field: str | None) -> None:
    # Given a member login body with a wrong type, bad id, spoofed field or no / two credentials
    body = {k: (world.app_id if v == "{app}" else v) for k, v in template.items()}
    # When it is sent
    # Then it is 400 and no member is created
    assert_refused(world, "POST", "/v1/auth/member", body=body, status=400, code="VALIDATION_FAILED", field=field)


def test_valid_login_token_with_a_spoofed_openid_field_creates_no_member(world: World) -> None:
    # Given a genuine login JWT for openid-1, with an extra "openid" field naming someone else
    body = {"app_id": world.app_id, "login_token": login_token(world.login_secret, "openid-1"), "device_id": "d", "openid": "victim"}
    # When it is sent
    # Then the unknown field is refused before anything is written
    assert_refused(world, "POST", "/v1/auth/member", body=body, status=400, code="VALIDATION_FAILED", field="openid")


OPERATOR = {"tenant_id": "acme", "username": OWNER[0], "password": OWNER[1]}

BAD_OPERATOR_LOGINS = [
    pytest.param({**OPERATOR, "password": 123}, "password", id="password-as-number"),
    pytest.param({**OPERATOR, "password": None}, "password", id="password-null"),
    pytest.param({**OPERATOR, "password": ""}, "password", id="password-empty"),
    pytest.param({**OPERATOR, "password": "p" * 10_000}, "password", id="password-10k"),
    pytest.param({k: v for k, v in OPERATOR.items() if k != "password"}, "password", id="password-missing"),
    pytest.param({**OPERATOR, "username": "u" * 65}, "username", id="username-too-long"),
    pytest.param({**OPERATOR, "username": ["owner"]}, "username", id="username-as-list"),
    pytest.param({**OPERATOR, "tenant_id": "acme#OP#owner"}, "tenant_id", id="tenant-with-key-separator"),
    pytest.param({**OPERATOR, "tenant_id": ""}, "tenant_id", id="tenant-empty"),
    pytest.param({**OPERATOR, "tenant_id": 7}, "tenant_id", id="tenant-as-number"),
    pytest.param({k: v for k, v in OPERATOR.items() if k != "tenant_id"}, "tenant_id", id="tenant-missing"),
    pytest.param({**OPERATOR, "role": "owner"}, "role", id="unknown-role"),
    pytest.param({}, None, id="empty-object"),
]


@pytest.mark.parametrize(("body", "field"), BAD_OPERATOR_LOGINS)
def test_bad_operator_login_body_is_refused(world: World, body: dict[str, Any], field: str | None) -> None:
    # Given an operator login body with a wrong type, missing, oversized or unknown field (even with the right password)
    # When it is sent
    # Then it is 400 (not a token) and nothing is written
    response = assert_refused(world, "POST", "/v1/auth/operator", body=body, status=400, code="VALIDATION_FAILED", field=field)
    assert "token" not in response.json_body


# --- protocol: methods, media types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/admin/apps"),
        ("DELETE", "/v1/admin/apps"),
        ("GET", "/v1/auth/operator"),
        ("PATCH", "/v1/auth/member"),
        ("POST", "/v1/me"),
    ],
)
def test_unsupported_method_is_405_envelope(world: World, method: str, path: str) -> None:
    # Given a route that does not accept this method
    # When it is called with it
    # Then it is 405 METHOD_NOT_ALLOWED in the envelope, and nothing is written
    response = assert_refused(
        world, method, path, body={"name": "A", "points_rate": 1}, headers=bearer(world.owner_token), status=405, code="METHOD_NOT_ALLOWED"
    )
    assert response.headers.get("Allow")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_unsupported_media_type_is_415_envelope(world: World, content_type: str) -> None:
    # Given a create-app request that is not sent as JSON
    headers = {**bearer(world.owner_token), "content-type": content_type}
    # When it is sent
    # Then it is 415 UNSUPPORTED_MEDIA_TYPE in the envelope, and nothing is written
    assert_refused(world, "POST", "/v1/admin/apps", raw=b"name=A&points_rate=1", headers=headers, status=415, code="UNSUPPORTED_MEDIA_TYPE")


# --- credentials ------------------------------------------------------------------------------------------------

KEY = os.environ["JIFEN_SIGNING_KEY"]
OWNER_CLAIMS = {"sub": OWNER[0], "ten": "acme", "role": "owner"}


def _alg_none(claims: dict[str, Any]) -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    return (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({**claims, 'iss': 'jifen', 'aud': 'jifen:operator', 'iat': now, 'exp': now + 3600})}."
    )


BAD_AUTHORIZATION = [
    pytest.param("Bearer garbage", id="garbage"),
    pytest.param("Bearer ", id="empty-token"),
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("Basic b3duZXI6b3duZXItcGFzc3dvcmQtMQ==", id="basic-auth"),
    pytest.param("Token abc.def.ghi", id="other-scheme"),
    pytest.param("Bearer a.b.c", id="three-garbage-parts"),
    pytest.param("Bearer " + "A" * 5000, id="huge"),
    pytest.param(lambda: "Bearer " + tokens.issue(KEY, "operator", OWNER_CLAIMS, int(time.time()) - 7200, 3600), id="expired"),
    pytest.param(
        lambda: "Bearer " + tokens.issue("another-signing-key-" + "z" * 40, "operator", OWNER_CLAIMS, int(time.time()), 3600),
        id="other-key",
    ),
    pytest.param(
        lambda: "Bearer " + tokens.issue(KEY, "verifier", {**OWNER_CLAIMS, "store": "st_1"}, int(time.time()), 3600), id="verifier-type"
    ),
    pytest.param(
        lambda: "Bearer " + tokens.issue(KEY, "member", {**OWNER_CLAIMS, "app": "a", "oid": "o", "dev": "d"}, int(time.time()), 3600),
        id="member-type",
    ),
    pytest.param(lambda: "Bearer " + _alg_none(OWNER_CLAIMS), id="alg-none"),
    pytest.param(
        lambda: (
            "Bearer " + jwt.encode({**OWNER_CLAIMS, "aud": "jifen:operator", "iat": int(time.time()), "exp": int(time.time()) + 60}, KEY)
        ),
        id="no-issuer",
    ),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
def test_bad_operator_credentials_are_401_and_write_nothing(world: World, authorization: Any) -> None:
    # Given an Authorization header that is garbage, expired, forged, of another token type or unsigned
    value = authorization() if callable(authorization) else authorization
    # When it is used to create an app
    # Then it is 401 UNAUTHORIZED and no app is written
    assert_refused(world, "POST", "/v1/admin/apps", body=APP, headers={"authorization": value}, status=401, code="UNAUTHORIZED")


def test_missing_authorization_is_401(world: World) -> None:
    # Given no Authorization header
    # When the owner-only route is called
    # Then it is 401
    assert_refused(world, "POST", "/v1/admin/apps", body=APP, status=401, code="UNAUTHORIZED")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda: tokens.issue(
                KEY, "member", {"sub": "m", "ten": "acme", "app": "a", "oid": "o", "dev": "d"}, int(time.time()) - 9000, 7200
            ),
            id="expired",
        ),
        pytest.param(
            lambda: tokens.issue(
                "another-signing-key-" + "z" * 40,
                "member",
                {"sub": "m", "ten": "acme", "app": "a", "oid": "o", "dev": "d"},
                int(time.time()),
                60,
            ),
            id="other-key",
        ),
        pytest.param(lambda: tokens.issue(KEY, "operator", OWNER_CLAIMS, int(time.time()), 60), id="operator-type"),
    ],
)
def test_bad_member_credentials_are_401(world: World, make_token: Any) -> None:
    # Given an expired, forged or wrong-type token
    # When it is used on GET /v1/me
    # Then it is 401
    assert_refused(world, "GET", "/v1/me", headers=bearer(make_token()), status=401, code="UNAUTHORIZED")


# --- query parameters --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=" + "9" * 30, "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=" + "A" * 600, "cursor"),
        (
            "cursor="
            + str(
                encode_cursor({"GSI1PK": {"S": "TENANT#globex#APPS"}, "GSI1SK": {"S": "APP#x"}, "PK": {"S": "APP#x"}, "SK": {"S": "APP"}})
            ),
            "cursor",
        ),
    ],
    ids=[
        "limit-0",
        "limit-101",
        "limit-negative",
        "limit-word",
        "limit-float",
        "limit-huge",
        "cursor-garbage",
        "cursor-600",
        "cursor-other",
    ],
)
def test_bad_list_parameters_are_refused(world: World, query: str, field: str) -> None:
    # Given a list request with an out-of-range limit or a cursor that is not from this list
    # When it is sent
    # Then it is 400 naming the parameter
    assert_refused(
        world, "GET", f"/v1/admin/apps?{query}", headers=bearer(world.owner_token), status=400, code="VALIDATION_FAILED", field=field
    )
