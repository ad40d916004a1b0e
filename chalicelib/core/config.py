"""The one settings model: read from the environment once, validated, cached."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

ENV_PREFIX = "JIFEN_"


class Settings(BaseModel):
    """Every setting is ``JIFEN_<NAME>`` in the environment (the region is AWS_DEFAULT_REGION).

    A plain pydantic model read from ``os.environ`` (not pydantic-settings: it costs ~150 ms of cold start).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = "local"
    table: str = "jifen-local"
    region: str = "us-east-1"
    # Set only when DynamoDB is not the regional endpoint (the local moto server).
    dynamodb_endpoint: str | None = None
    # Endpoint for the other AWS services used (Step Functions, S3) when run locally.
    aws_endpoint: str | None = None

    # Jifen's own token signing key: a Secrets Manager secret in the cloud, a plain value locally.
    signing_key_secret_arn: str | None = None
    signing_key: str | None = None

    member_token_ttl_seconds: int = 7200
    operator_token_ttl_seconds: int = 3600
    verifier_token_ttl_seconds: int = 28800
    signature_window_seconds: int = 300
    max_body_bytes: int = 64 * 1024
    config_cache_seconds: float = 5.0
    # How long a rotated-out secret keeps working, so tenants can roll their backends over.
    secret_rotation_grace_seconds: int = 3600
    # Cost of the scrypt password hash (2**14 = ~50 ms on one Lambda vCPU).
    password_hash_n: int = 2**14
    login_callback_timeout_seconds: float = 3.0
    # "http" calls the tenant's login-state callback; "fake" resolves code -> openid locally.
    login_callback_adapter: str = "http"
    # "http" POSTs expiry reminders to an app's reminder_webhook_url; "off" only writes the outbox.
    tenant_notifier: str = "http"
    # Cash red packets (G5): "fake" pays nobody and succeeds (local runs, tests); "none" refuses every payout
    # (the order is cancelled, points back). Unset: "fake" on the local stage, "none" anywhere else.
    payout_adapter: str | None = None
    # The fake refuses these openids (comma-separated) and any openid starting with "payout-fail".
    payout_fake_fail_openids: str = ""

    # Uploads (receipts, images) and the Step Functions state machines, by ASL file name.
    bucket: str = "jifen-local-uploads"
    upload_url_seconds: int = 900
    # Largest receipt image a member may upload (the presigned POST's content-length-range), in bytes.
    receipt_upload_max_bytes: int = 10 * 1024 * 1024
    sfn_receipt_review: str | None = None
    # DynamoDB calls give up (and retry) after this; the local server queues requests behind one lock
    dynamodb_timeout_seconds: float = 5.0
    sfn_order_fulfilment: str | None = None
    sfn_after_sales_review: str | None = None
    # After-sales (E2 / G8): a refund request nobody decides in this long is rejected (the member may ask again).
    after_sales_review_timeout_seconds: int = 7 * 86_400
    # Cash refunds: "fake" records them in the table (local runs, tests); "none" refuses them (no provider
    # configured). Unset: "fake" on the local stage, "none" anywhere else, so no deployed stage fakes money.
    refund_adapter: str | None = None
    # H5 base URL in front of a listing's in-app path in promotion links / QR codes (e.g. https://h5.example.com).
    mall_link_base: str | None = None


def from_environment(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, str] = {name: env[ENV_PREFIX + name.upper()] for name in Settings.model_fields if ENV_PREFIX + name.upper() in env}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        values["region"] = region
    return Settings.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return from_environment()
