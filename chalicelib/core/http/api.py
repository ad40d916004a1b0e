"""HTTP glue shared by every blueprint: declared auth, body parsing, the error envelope.

Every route is declared through ``Api.route`` with an auth rule; authentication runs before the view
and typed domain errors become the envelope here, in one place.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chalice.app import Blueprint, Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib.core.auth import nonce as request_guard
from chalicelib.core.auth.rules import (
    AppPrincipal,
    AuthRule,
    Credentials,
    MemberPrincipal,
    OperatorPrincipal,
    Principal,
    VerifierPrincipal,
    authenticate,
    spend_pending_nonce,
)
from chalicelib.core.errors import JifenError, NotFound, Unauthorized, ValidationFailed
from chalicelib.core.observability import count, logger

M = TypeVar("M", bound=BaseModel)


@dataclass
class RequestState:
    request: Request
    request_id: str
    principal: Principal = None


_state: ContextVar[RequestState | None] = ContextVar("jifen_request", default=None)


@dataclass(frozen=True)
class RouteSpec:
    """What a route declares: read by authentication and by the OpenAPI generator."""

    path: str
    methods: tuple[str, ...]
    auth: AuthRule
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    errors: tuple[int, ...] = field(default_factory=tuple)
    metric: str | None = None


ROUTE_SPEC_ATTR = "__jifen_route__"
MAX_PATH_ID = 128  # no id Jifen issues is longer; longer ones would exceed DynamoDB's key size


def begin_request(request: Request) -> RequestState:
    context = request.context or {}
    lambda_context = getattr(request, "lambda_context", None)
    request_id = str(context.get("requestId") or getattr(lambda_context, "aws_request_id", "") or uuid.uuid4())
    state = RequestState(request=request, request_id=request_id)
    _state.set(state)
    return state


def end_request() -> None:
    _state.set(None)


def state() -> RequestState:
    current = _state.get()
    if current is None:
        raise RuntimeError("no request in progress")
    return current


def request_id() -> str:
    current = _state.get()
    return current.request_id if current else "-"


def error_body(code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id()}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(exc: JifenError) -> Response:
    retry_after = getattr(exc, "retry_after", None)  # 429 TOO_MANY_ATTEMPTS says when to come back
    headers: dict[str, str | list[str]] | None = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(status_code=exc.status, body=error_body(exc.code, exc.message, exc.details), headers=headers)


def pydantic_details(exc: ValidationError) -> list[dict[str, str]]:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        details.append({"field": location, "problem": error["msg"]})
    return details[:20]


def raw_body() -> bytes:
    raw = state().request.raw_body or b""
    return raw.encode() if isinstance(raw, str) else raw


def parse_body(model: type[M]) -> M:
    """The request body validated by ``model``: malformed JSON, wrong types, unknown or missing fields → 400."""
    raw = raw_body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationFailed("Request body is not valid JSON", details=[{"field": "body", "problem": "malformed JSON"}]) from None
    if not isinstance(data, dict):
        raise ValidationFailed("Request body must be a JSON object", details=[{"field": "body", "problem": "not an object"}])
    try:
        return model.model_validate_json(raw)  # JSON mode: strict types, yet enum and date strings are accepted
    except ValidationError as exc:
        raise ValidationFailed("Request body is invalid", details=pydantic_details(exc)) from None


def query(name: str, *, max_length: int = 512) -> str | None:
    params = state().request.query_params
    value: str | None = params.get(name) if params else None
    if value is not None and len(value) > max_length:
        raise ValidationFailed(f"Query parameter {name} is too long", details=[{"field": name, "problem": "too long"}])
    return value


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    value = query(name, max_length=12)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ValidationFailed(
            f"Query parameter {name} must be an integer from {low} to {high}",
            details=[{"field": name, "problem": "out of range"}],
        )
    return int(value)


def header(name: str) -> str | None:
    value: str | None = state().request.headers.get(name.lower())
    return value


def _principal(kind: type[Any]) -> Any:
    principal = state().principal
    if not isinstance(principal, kind):
        raise RuntimeError(f"route expects a {kind.__name__}")
    return principal


def current_member() -> MemberPrincipal:
    member: MemberPrincipal = _principal(MemberPrincipal)
    return member


def current_operator() -> OperatorPrincipal:
    operator: OperatorPrincipal = _principal(OperatorPrincipal)
    return operator


def current_verifier() -> VerifierPrincipal:
    verifier: VerifierPrincipal = _principal(VerifierPrincipal)
    return verifier


def current_app_caller() -> AppPrincipal:
    caller: AppPrincipal = _principal(AppPrincipal)
    return caller


def ok(model: BaseModel, status: int = 200) -> Response:
    return Response(status_code=status, body=model.model_dump(mode="json"))


def _run_view(spec: RouteSpec, view: Callable[..., Any], path_params: dict[str, Any]) -> Any:
    current = state()
    request = current.request
    try:
        creds = Credentials(
            method=request.method,
            # API Gateway's top-level path has no stage prefix (requestContext.path does); Chalice local has only the latter
            path=request.to_original_event().get("path") or request.context.get("path") or request.path,
            headers=request.headers,
            body=raw_body(),
            path_params=path_params,
        )
        request_guard.hold(None)
        if any(len(str(value)) > MAX_PATH_ID for value in path_params.values()):
            raise NotFound("No such resource")
        current.principal = authenticate(spec.auth, creds)
        try:
            response = view(**path_params)
        except JifenError:
            spend_pending_nonce()
            raise
        except request_guard.NonceReplayed:
            raise Unauthorized("Nonce was already used") from None
        spend_pending_nonce()
        if spec.metric:
            count(spec.metric)
        return response
    except JifenError as exc:
        if exc.status == 409:
            count("".join(part.capitalize() for part in exc.code.split("_")))
        if exc.status >= 500:
            logger().warning("upstream failure", extra={"code": exc.code, "error": exc.message})
        return error_response(exc)
    except Exception:
        logger().exception("unhandled error", extra={"request_id": current.request_id, "path": spec.path})
        return Response(status_code=500, body=error_body("INTERNAL_ERROR", "An internal error occurred"))


class Api(Blueprint):
    """A Chalice blueprint whose routes must declare who may call them."""

    def __init__(self, import_name: str, tag: str) -> None:
        super().__init__(import_name)
        self.tag = tag

    def endpoint(
        self,
        path: str,
        *,
        auth: AuthRule,
        summary: str,
        methods: tuple[str, ...] = ("GET",),
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        query: tuple[str, ...] = (),
        headers: tuple[str, ...] = (),
        errors: tuple[int, ...] = (),
        metric: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``metric``: the business metric counted when the action succeeds (refusals count by error code)."""
        spec = RouteSpec(path, methods, auth, summary, self.tag, body, response, status, query, headers, errors, metric)

        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def guarded(**path_params: Any) -> Any:
                return _run_view(spec, view, path_params)

            setattr(guarded, ROUTE_SPEC_ATTR, spec)
            self.route(path, methods=list(methods))(guarded)
            return guarded

        return register


def query_day(default: str, name: str = "day") -> str:
    """A YYYY-MM-DD query parameter, ``default`` when absent."""
    from datetime import date

    value = query(name, max_length=10)
    if value is None:
        return default
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValidationFailed(f"{name} must be YYYY-MM-DD", details=[{"field": name, "problem": "not a date"}]) from None


def idempotency_key() -> str | None:
    key = header("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 64:
        raise ValidationFailed("Idempotency-Key must be 1-64 characters", details=[{"field": "Idempotency-Key", "problem": "length"}])
    return key
