"""The CDK code import job: S3 ObjectCreated under pools/ (or a direct payload) → mall.codes.run_job."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from chalicelib.core import aws
from chalicelib.core.errors import JifenError
from chalicelib.core.observability import log_event, logger
from chalicelib.mall import codes
from chalicelib.mall.models.codes import ImportTarget

JOB_MARGIN_SECONDS = 30.0


def targets(event: Any) -> list[ImportTarget]:
    """The imports an event asks for: S3 records whose key is a code file, or one direct payload."""
    if not isinstance(event, dict):
        return []
    if "Records" not in event:
        try:
            return [ImportTarget.model_validate(event)]
        except ValidationError:
            return []
    found = []
    for record in event.get("Records") or []:
        key = ((record or {}).get("s3") or {}).get("object", {}).get("key") if isinstance(record, dict) else None
        target = codes.target_of_key(unquote_plus(key)) if isinstance(key, str) else None
        if target is not None:
            found.append(target)
    return found


def import_codes(event: Any, context: Any = None) -> dict[str, Any]:
    """Run each import for up to the Lambda's time; an unfinished one continues in a fresh invocation of this function."""
    results = {}
    wanted = targets(event)
    if not wanted:
        logger().warning("code_import_ignored", extra={"reason": "no code file in the event"})
    for target in wanted:
        budget = codes.Budget.of(context, cap=codes.JOB_BUDGET_SECONDS, margin=JOB_MARGIN_SECONDS)
        try:
            outcome = codes.run_job(target, budget)
        except JifenError as exc:  # e.g. the object is gone: nothing a retry would fix
            log_event("code_import_refused", import_id=target.import_id, code=exc.code, error=exc.message)
            results[target.import_id] = exc.code
            continue
        results[target.import_id] = outcome.status
        if outcome.more and context is not None:
            waited = target.waited_seconds + outcome.waited_seconds
            aws.invoke_async(context.invoked_function_arn, target.model_copy(update={"waited_seconds": waited}).model_dump())
            log_event("code_import_continued", import_id=target.import_id, status=outcome.status, waited_seconds=waited)
    return results
