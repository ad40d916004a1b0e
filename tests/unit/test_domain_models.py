"""Domain and request models: expiry policies, secret rotation windows, strict request bodies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.tenancy.models import (
    App,
    CreateAppRequest,
    ExpiryPolicy,
    MemberLoginRequest,
    RotateSecretsRequest,
    Secret,
    UpdateAppRequest,
)


@pytest.mark.parametrize(
    "policy",
    [
        {},
        {"type": "never"},
        {"type": "rolling_days", "n": 1},
        {"type": "rolling_days", "n": 3650},
        {"type": "end_of_nth_month", "n": 0},
        {"type": "end_of_nth_month", "n": 120},
        {"type": "end_of_nth_year", "n": 0},
        {"type": "end_of_nth_year", "n": 10},
    ],
)
def test_valid_expiry_policies_are_accepted(policy: dict[str, Any]) -> None:
    # Given an expiry policy within its limits
    # When it is validated
    parsed = ExpiryPolicy.model_validate(policy)
    # Then it keeps its type and n
    assert parsed.type == policy.get("type", "never")
    assert parsed.n == policy.get("n")


@pytest.mark.parametrize(
    "policy",
    [
        {"type": "never", "n": 1},
        {"type": "never", "n": 0},
        {"type": "rolling_days", "n": 0},
        {"type": "rolling_days"},
        {"type": "rolling_days", "n": 3651},
        {"type": "end_of_nth_month", "n": 121},
        {"type": "end_of_nth_month"},
        {"type": "end_of_nth_month", "n": -1},
        {"type": "end_of_nth_year", "n": 11},
        {"type": "end_of_nth_week", "n": 1},
        {"type": "rolling_days", "n": 30, "grace": 1},
    ],
    ids=[
        "never-with-n",
        "never-with-zero",
        "rolling-zero",
        "rolling-no-n",
        "rolling-too-long",
        "month-121",
        "month-no-n",
        "month-negative",
        "year-11",
        "unknown-type",
        "unknown-field",
    ],
)
def test_invalid_expiry_policies_are_refused(policy: dict[str, Any]) -> None:
    # Given an expiry policy whose n does not fit its type (or an unknown type / field)
    # When it is validated
    # Then it is refused
    with pytest.raises(ValidationError):
        ExpiryPolicy.model_validate(policy)


def test_expiry_policy_is_immutable() -> None:
    # Given a validated policy
    policy = ExpiryPolicy(type="rolling_days", n=30)
    # When someone tries to change it in place
    # Then it refuses (a policy is a value)
    with pytest.raises(ValidationError):
        policy.n = 0  # type: ignore[misc]


def test_previous_secret_is_accepted_only_during_its_grace_period() -> None:
    # Given a secret rotated with the old value valid until t=1000
    secret = Secret(current="new", previous="old", previous_until=1000, rotated_at="2025-01-01T00:00:00Z")
    # When the accepted values are asked for before and at the end of the grace period
    # Then the old value is accepted only strictly before it ends
    assert secret.accepted(999) == ["new", "old"]
    assert secret.accepted(1000) == ["new"]


def test_never_rotated_secret_accepts_only_its_current_value() -> None:
    # Given a secret never rotated
    secret = Secret(current="only", rotated_at="2025-01-01T00:00:00Z")
    # When the accepted values are asked for
    # Then only the current value is accepted
    assert secret.accepted(0) == ["only"]


def test_rotation_without_grace_drops_the_previous_value_at_once() -> None:
    # Given a rotation with no grace period (previous_until unset)
    secret = Secret(current="new", previous="old", previous_until=None, rotated_at="2025-01-01T00:00:00Z")
    # When the accepted values are asked for
    # Then the old value no longer verifies
    assert secret.accepted(0) == ["new"]


def test_app_with_unknown_time_zone_is_refused() -> None:
    # Given app fields with a time zone that does not exist
    fields: dict[str, Any] = {
        "app_id": "a",
        "tenant_id": "t",
        "name": "n",
        "points_rate": 1,
        "time_zone": "Mars/Olympus_Mons",
        "expiry_policy": {},
        "daily_earn_cap": None,
        "login_mode": "jwt",
        "created_at": "x",
        "updated_at": "x",
    }
    # When an App is built
    # Then it is refused
    with pytest.raises(ValidationError, match="time zone"):
        App.model_validate(fields)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "A", "points_rate": "100"},
        {"name": "A", "points_rate": 1.5},
        {"name": "A", "points_rate": True},
        {"name": "A", "points_rate": 0},
        {"name": "A", "points_rate": 10**12},
        {"name": "", "points_rate": 1},
        {"name": "n" * 65, "points_rate": 1},
        {"points_rate": 1},
        {"name": "A", "points_rate": 1, "tenant_id": "other"},
        {"name": "A", "points_rate": 1, "login_mode": "callback"},
        {"name": "A", "points_rate": 1, "login_mode": "callback", "login_callback_url": "http://example.com/cb"},
        {"name": "A", "points_rate": 1, "time_zone": "Nowhere/City"},
        {"name": "A", "points_rate": 1, "daily_earn_cap": 0},
    ],
    ids=[
        "rate-string",
        "rate-float",
        "rate-bool",
        "rate-zero",
        "rate-huge",
        "name-empty",
        "name-long",
        "name-missing",
        "unknown-field",
        "callback-no-url",
        "callback-http",
        "bad-tz",
        "cap-zero",
    ],
)
def test_create_app_request_refuses_bad_bodies(body: dict[str, Any]) -> None:
    # Given a create-app body with a wrong type, out-of-range value, missing or unknown field
    # When it is validated
    # Then it is refused
    with pytest.raises(ValidationError):
        CreateAppRequest.model_validate(body)


def test_create_app_request_defaults() -> None:
    # Given the smallest valid create-app body
    # When it is validated
    body = CreateAppRequest.model_validate({"name": "A", "points_rate": 1})
    # Then the documented defaults apply
    assert (body.time_zone, body.expiry_policy.type, body.login_mode.value, body.daily_earn_cap) == ("Asia/Shanghai", "never", "jwt", None)


def test_update_app_request_requires_the_version_read() -> None:
    # Given an update without a version
    # When it is validated
    # Then it is refused (updates are optimistic)
    with pytest.raises(ValidationError, match="version"):
        UpdateAppRequest.model_validate({"name": "B"})


@pytest.mark.parametrize(
    "body",
    [
        {"app_id": "app_1", "device_id": "d"},
        {"app_id": "app_1", "device_id": "d", "login_token": "t", "code": "c"},
        {"app_id": "app 1", "device_id": "d", "code": "c"},
        {"app_id": "app_1", "device_id": "", "code": "c"},
        {"app_id": "app_1", "device_id": "d", "code": "c", "openid": "spoofed"},
    ],
    ids=["no-credential", "both-credentials", "bad-app-id", "empty-device", "openid-in-body"],
)
def test_member_login_request_needs_exactly_one_credential_and_no_extras(body: dict[str, Any]) -> None:
    # Given a member login body with no credential, both, a bad id or a spoofed openid
    # When it is validated
    # Then it is refused
    with pytest.raises(ValidationError):
        MemberLoginRequest.model_validate(body)


@pytest.mark.parametrize("names", [[], ["login_secret", "login_secret"], ["signing_key"], ["login_secret"] * 4])
def test_rotate_request_refuses_empty_repeated_or_unknown_secret_names(names: list[str]) -> None:
    # Given a rotation request with no names, a repeated name or an unknown one
    # When it is validated
    # Then it is refused
    with pytest.raises(ValidationError):
        RotateSecretsRequest.model_validate({"secrets": names})
