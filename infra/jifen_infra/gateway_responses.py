"""API Gateway's own errors (unknown route, throttling, oversize body...) in Jifen's error envelope.

They go into the REST API's OpenAPI body (``x-amazon-apigateway-gateway-responses``) rather than
separate ``AWS::ApiGateway::GatewayResponse`` resources: a gateway response only takes effect after
the API is redeployed, and SAM redeploys exactly when the OpenAPI body changes. Separate resources
could land after SAM's deployment on the first ``cdk deploy`` and stay invisible until the next one.
Gateway response templates are plain substitution (no VTL), so each type gets its own fixed code.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class GatewayError(NamedTuple):
    status: int | None  # None keeps API Gateway's own status (the DEFAULT_* catch-alls)
    code: str
    message: str | None  # None passes API Gateway's message through


GATEWAY_ERRORS: dict[str, GatewayError] = {
    # A REST API answers an unknown path or method with 403 "Missing Authentication Token".
    "MISSING_AUTHENTICATION_TOKEN": GatewayError(404, "NOT_FOUND", "No such route"),
    "UNAUTHORIZED": GatewayError(401, "UNAUTHORIZED", "Missing or invalid credentials"),
    "ACCESS_DENIED": GatewayError(403, "FORBIDDEN", "Access denied"),
    "BAD_REQUEST_BODY": GatewayError(400, "BAD_REQUEST", None),
    "BAD_REQUEST_PARAMETERS": GatewayError(400, "BAD_REQUEST", None),
    "UNSUPPORTED_MEDIA_TYPE": GatewayError(415, "UNSUPPORTED_MEDIA_TYPE", None),
    "REQUEST_TOO_LARGE": GatewayError(413, "PAYLOAD_TOO_LARGE", "Request body too large"),
    "THROTTLED": GatewayError(429, "THROTTLED", "Too many requests"),
    "QUOTA_EXCEEDED": GatewayError(429, "THROTTLED", "Too many requests"),
    "INTEGRATION_TIMEOUT": GatewayError(504, "TIMEOUT", "The request timed out"),
    "DEFAULT_4XX": GatewayError(None, "BAD_REQUEST", None),
    "DEFAULT_5XX": GatewayError(None, "INTERNAL_ERROR", "Internal error"),
}


def envelope_template(error: GatewayError) -> str:
    """The JSON body template; ``$context.error.messageString`` is API Gateway's message, already quoted."""
    message = json.dumps(error.message) if error.message is not None else "$context.error.messageString"
    return '{"error": {"code": ' + json.dumps(error.code) + ', "message": ' + message + ', "request_id": "$context.requestId"}}'


def openapi_gateway_responses() -> dict[str, Any]:
    """The ``x-amazon-apigateway-gateway-responses`` extension for the REST API's OpenAPI body."""
    responses: dict[str, Any] = {}
    for response_type, error in GATEWAY_ERRORS.items():
        response: dict[str, Any] = {"responseTemplates": {"application/json": envelope_template(error)}}
        if error.status is not None:
            response["statusCode"] = str(error.status)
        responses[response_type] = response
    return responses
