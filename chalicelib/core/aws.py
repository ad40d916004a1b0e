"""boto3 clients for S3 and Step Functions, built once per container on first use (not at import)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, UpstreamFailed


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


def upload_form(key: str, content_type: str, max_bytes: int) -> tuple[str, dict[str, str]]:
    """A presigned POST for one file: (url, form fields). S3 refuses a file of another content type or
    outside 1..``max_bytes`` bytes (the policy's ``content-length-range``, which a presigned PUT cannot carry).

    The client sends a multipart/form-data POST to the url: every field as given, then the file as ``file``.
    """
    settings = get_settings()
    post: dict[str, Any] = client("s3").generate_presigned_post(
        settings.bucket,
        key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=settings.upload_url_seconds,
    )
    return str(post["url"]), {str(name): str(value) for name, value in post["fields"].items()}


def download_url(key: str) -> str:
    settings = get_settings()
    url: str = client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": settings.bucket, "Key": key}, ExpiresIn=settings.upload_url_seconds
    )
    return url


def uploaded(key: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client("s3").head_object(Bucket=get_settings().bucket, Key=key)
    except ClientError:
        return False
    except BotoCoreError as exc:
        raise UpstreamFailed("The upload could not be checked") from exc
    return True


def start_execution(state_machine_arn: str | None, name: str, payload: dict[str, Any]) -> str:
    """Start a Standard execution; its name makes a repeated start of the same work a no-op."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not state_machine_arn:
        raise UpstreamFailed("The workflow is not configured")
    try:
        response = client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        raise UpstreamFailed("The workflow could not be started") from exc
    except BotoCoreError as exc:  # no answer (connection, timeout): the caller compensates; a named restart is a no-op
        raise UpstreamFailed("The workflow could not be started") from exc
    arn: str = response["executionArn"]
    return arn


def send_task_success(token: str, output: dict[str, Any]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            raise Conflict("This review is no longer waiting for a decision") from exc
        raise UpstreamFailed("The workflow could not be resumed") from exc
    except BotoCoreError as exc:
        raise UpstreamFailed("The workflow could not be resumed") from exc


# --- code files (CDK pools) and continuing a job --------------------------------------------------

READ_BLOCK_BYTES = 1 << 20


class ObjectChanged(Exception):
    """The object is not the version an import started on (it was uploaded again)."""


def object_info(key: str) -> tuple[int, str] | None:
    """(size in bytes, ETag) of an uploaded object, None if there is none."""
    from botocore.exceptions import ClientError

    try:
        head = client("s3").head_object(Bucket=get_settings().bucket, Key=key)
    except ClientError:
        return None
    return int(head["ContentLength"]), str(head["ETag"])


def read_lines(key: str, *, start: int, end: int, etag: str, max_line: int) -> Iterator[tuple[bytes, int]]:
    """The lines of bytes ``start``..``end`` of one version of an object: (line without "\\n", offset after it).

    Ranged GETs of a megabyte each (no stream held open for minutes); a line longer than ``max_line``
    comes back cut to ``max_line + 1`` bytes, so memory stays bounded whatever the file holds.
    """
    from botocore.exceptions import ClientError

    bucket = get_settings().bucket
    position = start
    line = bytearray()
    pending = 0  # bytes of the current line seen so far (more than kept when it is too long)
    while position < end:
        last = min(position + READ_BLOCK_BYTES, end) - 1
        try:
            response = client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes={position}-{last}", IfMatch=etag)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "InvalidRange", "NoSuchKey"):
                raise ObjectChanged(key) from exc
            raise
        block: bytes = response["Body"].read()
        if not block:
            raise ObjectChanged(key)
        index = 0
        while True:
            newline = block.find(b"\n", index)
            piece = block[index:] if newline < 0 else block[index:newline]
            if len(line) <= max_line:
                line += piece[: max_line + 1 - len(line)]
            pending += len(piece)
            if newline < 0:
                break
            yield bytes(line), position + newline + 1
            line.clear()
            pending = 0
            index = newline + 1
        position += len(block)
    if pending:
        yield bytes(line), end


def invoke_async(function: str, payload: dict[str, Any]) -> None:
    """Invoke a Lambda function without waiting (a job continuing itself in a fresh invocation)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client("lambda").invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode())
    except (ClientError, BotoCoreError) as exc:
        raise UpstreamFailed("The job could not be continued") from exc


def write_object(key: str, chunks: Iterable[bytes], *, content_type: str, part_bytes: int = 8 * 1024 * 1024) -> int:
    """Write an object from chunks without holding all of it: one PUT when small, a multipart upload otherwise.

    An exception from the chunks (or from S3) aborts the upload, so no partial object appears; returns the size.
    """
    from botocore.exceptions import ClientError

    s3, bucket = client("s3"), get_settings().bucket
    buffer = bytearray()
    size = 0
    upload_id: str | None = None
    parts: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            buffer += chunk
            size += len(chunk)
            if len(buffer) >= part_bytes:
                if upload_id is None:
                    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
                number = len(parts) + 1
                etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer))["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                buffer.clear()
        if upload_id is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), ContentType=content_type)
            return size
        if buffer:
            number = len(parts) + 1
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer))["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        return size
    except Exception as exc:
        if upload_id is not None:
            # if this fails too, the bucket's lifecycle rule aborts incomplete uploads after a day
            with contextlib.suppress(ClientError):
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if isinstance(exc, ClientError):
            raise UpstreamFailed("The file could not be written") from exc
        raise


def attachment_url(key: str, filename: str) -> tuple[str, int]:
    """A presigned GET that downloads the object as ``filename``; and for how many seconds it works."""
    settings = get_settings()
    url: str = client("s3").generate_presigned_url(
        "get_object",
        Params={"Bucket": settings.bucket, "Key": key, "ResponseContentDisposition": f'attachment; filename="{filename}"'},
        ExpiresIn=settings.upload_url_seconds,
    )
    return url, settings.upload_url_seconds
