"""The OpenAPI document covers every route, and no route escapes the declared-auth machinery."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.core.auth.rules import AuthKind
from chalicelib.core.http.api import ROUTE_SPEC_ATTR, RouteSpec

# The only operations anyone may call without a credential. Adding one is a decision: extend this list on purpose.
PUBLIC_OPERATIONS = {
    ("post", "/v1/auth/member"),
    ("post", "/v1/auth/operator"),
    ("post", "/v1/auth/verifier"),
    ("get", "/v1/health"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/mall/page/preview"),  # G7: the preview token in the query is the credential (checked by the view)
}

SECURITY_BY_PREFIX = {
    "/v1/admin/": "operatorToken",
    "/v1/server/": "serverSignature",
    "/v1/webhooks/": "webhookSignature",
    "/v1/verifier/": "verifierToken",
}

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def chalice_app() -> Any:
    from app import app

    return app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document as served (built from the route table only: no table access, so no moto needed)."""
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        response = client.http.get("/v1/openapi.json")
    assert response.status_code == 200, response.body
    assert response.headers["X-Request-Id"]
    body: dict[str, Any] = response.json_body
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def route_table(chalice_app: Any) -> set[tuple[str, str]]:
    return {(method.lower(), path) for path, methods in chalice_app.routes.items() for method in methods}


def test_document_is_openapi_3_1_served_publicly(document: dict[str, Any]) -> None:
    # Given the running API
    # When GET /v1/openapi.json is called without credentials
    # Then it is an OpenAPI 3.1 document with paths, schemas and the five security schemes
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "Jifen"
    assert document["paths"]
    assert set(document["components"]["securitySchemes"]) == {
        "memberToken",
        "operatorToken",
        "verifierToken",
        "serverSignature",
        "webhookSignature",
    }


def test_every_route_is_in_the_document(chalice_app: Any, document: dict[str, Any]) -> None:
    # Given every (path, method) Chalice will answer
    routes = route_table(chalice_app)
    assert ("post", "/v1/auth/member") in routes and len(routes) >= 10
    # When the document's operations are listed
    documented = {(method, path) for method, path, _ in operations(document)}
    # Then every route is documented, and the document describes nothing that is not a route
    assert routes - documented == set(), f"routes missing from the OpenAPI document: {sorted(routes - documented)}"
    assert documented - routes == set(), f"documented operations that are not routes: {sorted(documented - routes)}"


def test_every_route_declares_an_auth_rule(chalice_app: Any) -> None:
    # Given every view Chalice dispatches to
    # When each is checked for the route spec that Api.endpoint attaches
    missing = [
        (method, path)
        for path, methods in chalice_app.routes.items()
        for method, entry in methods.items()
        if not isinstance(getattr(entry.view_function, ROUTE_SPEC_ATTR, None), RouteSpec)
    ]
    # Then none was registered around the declared-auth machinery
    assert missing == []


def test_every_route_spec_matches_its_chalice_route(chalice_app: Any) -> None:
    # Given each route's declared spec
    # When it is compared with where Chalice registered the view
    # Then the spec's path and methods are the route's (authentication reads the spec of the route it guards)
    for path, methods in chalice_app.routes.items():
        for method, entry in methods.items():
            spec: RouteSpec = getattr(entry.view_function, ROUTE_SPEC_ATTR)
            assert spec.path == path
            assert method in spec.methods


def test_only_the_login_health_and_document_routes_are_public(chalice_app: Any, document: dict[str, Any]) -> None:
    # Given every route's declared auth rule
    public_specs = {
        (method.lower(), path)
        for path, methods in chalice_app.routes.items()
        for method, entry in methods.items()
        if getattr(entry.view_function, ROUTE_SPEC_ATTR).auth.kind is AuthKind.PUBLIC
    }
    # When the public ones, and the operations without security in the document, are collected
    unsecured = {(method, path) for method, path, operation in operations(document) if not operation.get("security")}
    # Then both are exactly the logins, health, this document and the page preview
    assert public_specs == PUBLIC_OPERATIONS
    assert unsecured == PUBLIC_OPERATIONS


def test_every_protected_operation_names_a_defined_security_scheme(document: dict[str, Any]) -> None:
    # Given the document's security schemes
    schemes = set(document["components"]["securitySchemes"])
    # When each non-public operation's security is read
    for method, path, operation in operations(document):
        if (method, path) in PUBLIC_OPERATIONS:
            continue
        names = {name for requirement in operation["security"] for name in requirement}
        # Then it names at least one scheme, every one defined, matching the part of the API it belongs to
        assert names, (method, path)
        assert names <= schemes, (method, path, names)
        expected = next((scheme for prefix, scheme in SECURITY_BY_PREFIX.items() if path.startswith(prefix)), "memberToken")
        assert names == {expected}, (method, path, names)


def test_operator_operations_list_the_roles_allowed(document: dict[str, Any]) -> None:
    # Given the operator operations
    # When their x-jifen-roles are read
    for method, path, operation in operations(document):
        if path.startswith("/v1/admin/"):
            roles = operation.get("x-jifen-roles")
            # Then each lists a non-empty subset of the four roles, always including owner
            assert roles, (method, path)
            assert set(roles) <= {"owner", "operator", "reviewer", "viewer"}
            assert "owner" in roles
    creates = document["paths"]["/v1/admin/apps"]["post"]["x-jifen-roles"]
    assert creates == ["owner"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_request_body_resolves_to_a_component_schema(chalice_app: Any, document: dict[str, Any]) -> None:
    # Given the routes that declare a body model
    schemas = document["components"]["schemas"]
    with_body = {
        (method.lower(), path): getattr(entry.view_function, ROUTE_SPEC_ATTR).body
        for path, methods in chalice_app.routes.items()
        for method, entry in methods.items()
        if getattr(entry.view_function, ROUTE_SPEC_ATTR).body is not None
    }
    assert ("post", "/v1/admin/apps") in with_body
    # When each documented request body is followed
    for (method, path), model in with_body.items():
        body = document["paths"][path][method]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        # Then it points at that model's schema in components, which lists the model's fields
        assert body["required"] is True
        assert ref == f"#/components/schemas/{model.__name__}"
        assert set(model.model_fields) <= set(schemas[model.__name__]["properties"])


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    # Given every $ref anywhere in the document
    refs = set(_refs(document))
    assert refs
    # When each is looked up
    # Then it points into components/schemas at something defined
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"], ref


def test_strict_request_schemas_forbid_unknown_fields(document: dict[str, Any]) -> None:
    # Given the schemas of the login and create-app bodies
    schemas = document["components"]["schemas"]
    # When their additionalProperties are read
    # Then the document tells clients unknown fields are refused, as the API does
    for name in ("MemberLoginRequest", "OperatorLoginRequest", "CreateAppRequest"):
        assert schemas[name].get("additionalProperties") is False, name
    assert set(schemas["CreateAppRequest"]["required"]) == {"name", "points_rate"}


def test_every_operation_documents_the_error_envelope(document: dict[str, Any]) -> None:
    # Given every operation
    for method, path, operation in operations(document):
        responses = operation["responses"]
        # When its responses are read
        errors = {status: r for status, r in responses.items() if int(status) >= 400}
        # Then it has a success response, and 400 and 500 (at least) answer with the error envelope
        assert any(200 <= int(status) < 300 for status in responses), (method, path)
        assert {"400", "500"} <= set(errors), (method, path)
        if (method, path) not in PUBLIC_OPERATIONS:
            assert "401" in errors, (method, path)
        for response in errors.values():
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["properties"]["error"]["required"] == ["code", "message", "request_id"]


def test_operation_ids_are_unique_and_path_parameters_declared(document: dict[str, Any]) -> None:
    # Given every operation
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    # When ids and path parameters are checked
    # Then ids are unique and each {param} in a path is a required path parameter
    assert len(ids) == len(set(ids))
    for method, path, operation in operations(document):
        declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
        assert all(p["required"] for p in operation["parameters"] if p["in"] == "path")


def test_document_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    # Given the served document
    # openapi-spec-validator is present through moto[server] (pinned in requirements-dev.txt); no dependency is added for it
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    # When it is validated against the OpenAPI 3.1 schema
    # Then no error is raised
    validate(document, cls=OpenAPIV31SpecValidator)


def test_route_without_an_auth_rule_fails_closed(aws: Any) -> None:
    # Given an app with Jifen's middleware and a route registered around Api.endpoint (no auth rule)
    from chalice import Chalice
    from chalice.test import Client

    from chalicelib.core.http import middleware

    rogue = Chalice(app_name="rogue")
    middleware.register(rogue, middleware.http_middleware(rogue))

    @rogue.route("/v1/rogue")
    def rogue_view() -> dict[str, str]:
        return {"secret": "tenant data"}

    # When it is called
    with Client(rogue) as client:
        response = client.http.get("/v1/rogue")
    # Then the middleware refuses to run it: 500 envelope, nothing of the view's answer
    assert response.status_code == 500
    assert response.json_body["error"]["code"] == "INTERNAL_ERROR"
    assert "tenant data" not in response.body.decode()
