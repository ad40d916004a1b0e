"""Routes of the platform itself: liveness and the OpenAPI document."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import PUBLIC
from chalicelib.core.http.api import Api

public = Api(__name__, tag="auth")


@public.endpoint("/v1/health", auth=PUBLIC, summary="Liveness")
def health() -> dict[str, bool]:
    return {"ok": True}


@public.endpoint("/v1/openapi.json", auth=PUBLIC, summary="This API's OpenAPI 3.1 document")
def openapi_document() -> Response:
    from chalicelib.core.http.openapi import document

    return Response(status_code=200, body=document(public.current_app))  # type: ignore[arg-type]
