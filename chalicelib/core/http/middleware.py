"""The one HTTP middleware: request id, body size limit, fail-closed route check, envelope for every error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Request, Response

from chalicelib.core.config import get_settings
from chalicelib.core.http.api import ROUTE_SPEC_ATTR, begin_request, end_request, error_body
from chalicelib.core.observability import logger

# Chalice's own error responses (405, 415, view errors) → the envelope's codes.
_CHALICE_CODES = {
    400: "VALIDATION_FAILED",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "THROTTLED",
}


def as_envelope(response: Response) -> Response:
    """Rewrite a non-2xx response that is not already an envelope (Chalice's own bodies) into one."""
    body = response.body
    if response.status_code < 400 or (isinstance(body, dict) and "error" in body):
        return response
    code = _CHALICE_CODES.get(response.status_code, "INTERNAL_ERROR" if response.status_code >= 500 else "BAD_REQUEST")
    message = body.get("Message") if isinstance(body, dict) else None
    if response.status_code >= 500:
        message = "An internal error occurred"
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return Response(
        status_code=response.status_code, body=error_body(code, message or code.replace("_", " ").capitalize()), headers=headers
    )


def _declared(app: Chalice, request: Request) -> bool:
    resource = (request.context or {}).get("resourcePath")
    entry = app.routes.get(resource or "", {}).get(request.method)
    return entry is None or hasattr(entry.view_function, ROUTE_SPEC_ATTR)


def http_middleware(app: Chalice) -> Callable[[Request, Callable[[Request], Response]], Response]:
    def jifen_http(event: Request, get_response: Callable[[Request], Response]) -> Response:
        state = begin_request(event)
        log = logger()
        log.set_correlation_id(state.request_id)
        try:
            max_body = get_settings().max_body_bytes
            body_size = len(event.raw_body or b"")
            if body_size > max_body:
                response = Response(status_code=413, body=error_body("PAYLOAD_TOO_LARGE", f"Request body is larger than {max_body} bytes"))
            elif not _declared(app, event):
                log.error("route without an auth rule", extra={"path": event.path})
                response = Response(status_code=500, body=error_body("INTERNAL_ERROR", "An internal error occurred"))
            else:
                response = as_envelope(get_response(event))
        except Exception:
            log.exception("unhandled error in middleware")
            response = Response(status_code=500, body=error_body("INTERNAL_ERROR", "An internal error occurred"))
        finally:
            end_request()
        response.headers["X-Request-Id"] = state.request_id
        log.info(
            "request",
            extra={
                "method": event.method,
                "path": event.path,
                "status": response.status_code,
                "bytes_in": len(event.raw_body or b""),
            },
        )
        return response

    return jifen_http


def register(app: Chalice, *handlers: Any) -> None:
    for handler in handlers:
        app.register_middleware(handler, "http")


_powertools: Any = None


def powertools(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Powertools' Logger context, Tracer and Metrics as Chalice middleware.

    Built on the first request, not at import: Powertools and X-Ray cost ~150 ms of import time.
    """
    global _powertools
    if _powertools is None:
        from chalice.app import ConvertToMiddleware

        from chalicelib.core.observability import metrics, tracer

        layers = [
            ConvertToMiddleware(logger().inject_lambda_context(clear_state=True)),
            ConvertToMiddleware(tracer().capture_lambda_handler),
            ConvertToMiddleware(metrics().log_metrics),
        ]

        def chain(request: Request, last: Callable[[Request], Response]) -> Response:
            handler = last
            for layer in reversed(layers):
                handler = (lambda mw, nxt: lambda req: mw(req, nxt))(layer, handler)
            return handler(request)

        _powertools = chain
    response: Response = _powertools(event, get_response)
    return response
