"""boto3 clients for S3 and Step Functions, built once per container on first use (not at import)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from chalicelib.config import get_settings
from chalicelib.errors import Conflict, UpstreamFailed


@lru_cache(maxsize=4)
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=10)
    # S3 on a custom endpoint (the local moto server) needs path-style addressing.
    if service == "s3":
        config = config.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    return boto3.client(service, endpoint_url=settings.aws_endpoint, region_name=settings.region, config=config)


def upload_url(key: str, content_type: str) -> str:
    """A presigned PUT the member's client uploads one file to."""
    settings = get_settings()
    url: str = client("s3").generate_presigned_url(
        "put_object",
        Params={"Bucket": settings.bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=settings.upload_url_seconds,
    )
    return url


def download_url(key: str) -> str:
    settings = get_settings()
    url: str = client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": settings.bucket, "Key": key}, ExpiresIn=settings.upload_url_seconds
    )
    return url


def uploaded(key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client("s3").head_object(Bucket=get_settings().bucket, Key=key)
    except ClientError:
        return False
    return True


def start_execution(state_machine_arn: str | None, name: str, payload: dict[str, Any]) -> str:
    """Start a Standard execution; its name makes a repeated start of the same work a no-op."""
    from botocore.exceptions import ClientError

    if not state_machine_arn:
        raise UpstreamFailed("The workflow is not configured")
    try:
        response = client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        raise UpstreamFailed("The workflow could not be started") from exc
    arn: str = response["executionArn"]
    return arn


def send_task_success(token: str, output: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    try:
        client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            raise Conflict("This review is no longer waiting for a decision") from exc
        raise UpstreamFailed("The workflow could not be resumed") from exc
