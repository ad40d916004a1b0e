"""Shared fixtures: moto-backed table (same schema as CDK), the Chalice test client, a demo tenant."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "JIFEN_TABLE": "jifen-test",
        "JIFEN_SIGNING_KEY": "test-signing-key-" + "x" * 32,
        "JIFEN_PASSWORD_HASH_N": "1024",  # fast hashes in tests; the default is 2**14
        "JIFEN_LOGIN_CALLBACK_ADAPTER": "fake",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("JIFEN_TEST_LOG_LEVEL", "CRITICAL"),
    }
)
os.environ.pop("JIFEN_DYNAMODB_ENDPOINT", None)

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from jifen_local import transactions

# moto rolls a transaction back by copying the whole table per item; this rolls back only what it wrote
transactions.install()

TENANT = "acme"
OWNER = ("owner", "owner-password-1")


@pytest.fixture
def aws() -> Iterator[Any]:
    """A fresh moto account with the single table created from the shared schema."""
    with mock_aws():
        client = boto3.client("dynamodb")
        schema.create_table(client, os.environ["JIFEN_TABLE"])
        config_cache().clear()
        yield client
        config_cache().clear()


def table_items(client: Any) -> list[dict[str, Any]]:
    """Every item in the test table (tests may scan; the product never does)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": os.environ["JIFEN_TABLE"]}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def api(aws: Any) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        yield client


@dataclass
class Tenant:
    tenant_id: str
    owner_token: str
    app_id: str
    login_secret: str
    server_key: str
    webhook_secret: str


def call(api: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    all_headers = {"content-type": "application/json", **(headers or {})}
    return getattr(api.http, method.lower())(path, headers=all_headers, body=data)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def tenant(api: Any) -> Tenant:
    """Given a tenant with its owner logged in and one app created through the admin API."""
    from chalicelib.tenancy import accounts

    accounts.create_tenant(TENANT, "Acme", *OWNER)
    login = call(api, "POST", "/v1/auth/operator", {"tenant_id": TENANT, "username": OWNER[0], "password": OWNER[1]})
    assert login.status_code == 200, login.json_body
    token = login.json_body["token"]
    created = call(api, "POST", "/v1/admin/apps", {"name": "Acme App", "points_rate": 100}, bearer(token))
    assert created.status_code == 201, created.json_body
    secrets = created.json_body["secrets"]
    return Tenant(
        tenant_id=TENANT,
        owner_token=token,
        app_id=created.json_body["app"]["app_id"],
        login_secret=secrets["login_secret"],
        server_key=secrets["server_key"],
        webhook_secret=secrets["webhook_secret"],
    )


@pytest.fixture(scope="module")
def moto_api() -> Iterator[tuple[Any, Any]]:
    """One moto account and one Chalice test client for a test module; tests that use it recreate the table."""
    with mock_aws():
        from chalice.test import Client

        from app import app

        with Client(app) as api:
            yield api, boto3.client("dynamodb")
        config_cache().clear()
