"""OpenAPI 3.1 generated from Chalice's route table and the pydantic models each route declares."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from chalice.app import Chalice
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.core.auth.rules import AuthKind
from chalicelib.core.http.api import ROUTE_SPEC_ATTR, RouteSpec

_SECURITY: dict[AuthKind, list[dict[str, list[str]]]] = {
    AuthKind.MEMBER: [{"memberToken": []}],
    AuthKind.OPERATOR: [{"operatorToken": []}],
    AuthKind.VERIFIER: [{"verifierToken": []}],
    AuthKind.SERVER: [{"serverSignature": []}],
    AuthKind.WEBHOOK: [{"webhookSignature": []}],
    AuthKind.PUBLIC: [],
}

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_FAILED"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"field": {"type": "string"}, "problem": {"type": "string"}}},
                },
            },
        }
    },
}


def route_specs(app: Chalice) -> list[RouteSpec]:
    specs = []
    for methods in app.routes.values():
        for entry in methods.values():
            spec = getattr(entry.view_function, ROUTE_SPEC_ATTR, None)
            if spec is not None and spec not in specs:
                specs.append(spec)
    return specs


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(spec: RouteSpec, method: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in re.findall(r"{(\w+)}", spec.path)
    ]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in spec.query]
    params += [{"name": name, "in": "header", "required": False, "schema": {"type": "string"}} for name in spec.headers]
    success: dict[str, Any] = {"description": "OK"}
    if spec.response is not None:
        success["content"] = {"application/json": {"schema": _ref(spec.response)}}
    responses: dict[str, Any] = {str(spec.status): success}
    default_errors = {400, 413} | ({401} if spec.auth.kind is not AuthKind.PUBLIC else set())
    if spec.auth.kind is AuthKind.OPERATOR:
        default_errors.add(403)
    for status in sorted(default_errors | set(spec.errors) | {500}):
        responses[str(status)] = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        }
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', spec.path).strip('_')}",
        "summary": spec.summary,
        "tags": [spec.tag],
        "security": _SECURITY[spec.auth.kind],
        "parameters": params,
        "responses": responses,
    }
    if spec.auth.kind is AuthKind.OPERATOR:
        operation["x-jifen-roles"] = sorted(role.value for role in spec.auth.roles)
    if spec.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(spec.body)}}}
    return operation


def build(app: Chalice) -> dict[str, Any]:
    specs = route_specs(app)
    models = sorted({m for spec in specs for m in (spec.body, spec.response) if m is not None}, key=lambda m: m.__name__)
    _, schemas = models_json_schema(
        [(m, "validation" if any(s.body is m for s in specs) else "serialization") for m in models],
        ref_template="#/components/schemas/{model}",
    )
    components = dict(schemas.get("$defs", {}))
    components["ErrorEnvelope"] = _ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        for method in spec.methods:
            paths.setdefault(spec.path, {})[method.lower()] = _operation(spec, method)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Jifen", "version": "1.0.0", "description": "User operations: points, tasks, mall, draws, coupons."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "memberToken": {"type": "http", "scheme": "bearer", "description": "from POST /v1/auth/member"},
                "operatorToken": {"type": "http", "scheme": "bearer", "description": "from POST /v1/auth/operator"},
                "verifierToken": {"type": "http", "scheme": "bearer", "description": "from POST /v1/auth/verifier"},
                "serverSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Jifen-Signature",
                    "description": "HMAC-SHA256 with the app's server key; see API.md",
                },
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Jifen-Webhook-Signature",
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, t.body)>",
                },
            },
        },
    }


@lru_cache(maxsize=1)
def _cached(app_id: int, app: Chalice) -> dict[str, Any]:
    return build(app)


def document(app: Chalice) -> dict[str, Any]:
    return _cached(id(app), app)
