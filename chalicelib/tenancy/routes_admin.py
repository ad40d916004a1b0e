"""Operator routes of tenancy: the tenant, its apps (settings, secrets), operators, stores, verifiers."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS, OWNER
from chalicelib.core.clock import iso
from chalicelib.core.http.api import Api, current_operator, ok, parse_body, query, query_int
from chalicelib.tenancy import accounts, apps
from chalicelib.tenancy.models import (
    AppList,
    AppOut,
    AppSecretsOut,
    CreateAppRequest,
    CreateAppResponse,
    CreateOperatorRequest,
    CreateStoreRequest,
    CreateVerifierRequest,
    OperatorList,
    OperatorOut,
    RotateSecretsRequest,
    RotateSecretsResponse,
    StoreList,
    StoreOut,
    TenantOut,
    UpdateAppRequest,
    VerifierOut,
)

admin = Api(__name__, tag="admin")
PAGE = ("cursor", "limit")


@admin.endpoint("/v1/admin/tenant", auth=ANY_OPERATOR, response=TenantOut, summary="The operator's tenant")
def get_tenant() -> Response:
    tenant = accounts.get_tenant(current_operator().tenant_id)
    return ok(TenantOut(**tenant.model_dump()))


@admin.endpoint(
    "/v1/admin/apps",
    methods=("POST",),
    auth=OWNER,
    body=CreateAppRequest,
    response=CreateAppResponse,
    status=201,
    summary="Create an app; its secrets are shown in full only in this response",
    errors=(400, 401, 403),
)
def create_app() -> Response:
    created = apps.create_app(current_operator().tenant_id, parse_body(CreateAppRequest))
    hints = apps.hints_of(created.secrets)
    secrets = AppSecretsOut(
        login_secret=created.secrets.login_secret.current,
        server_key=created.secrets.server_key.current,
        webhook_secret=created.secrets.webhook_secret.current,
    )
    return ok(CreateAppResponse(app=AppOut.from_domain(created.app, hints), secrets=secrets), status=201)


@admin.endpoint("/v1/admin/apps", auth=ANY_OPERATOR, response=AppList, query=PAGE, summary="The tenant's apps")
def list_apps() -> Response:
    page = apps.list_apps(current_operator().tenant_id, query("cursor"), query_int("limit", 50, low=1, high=100))
    return ok(AppList(items=[AppOut.from_domain(app) for app in page.items], cursor=page.cursor))


@admin.endpoint("/v1/admin/apps/{app_id}", auth=ANY_OPERATOR, response=AppOut, summary="One app", errors=(404,))
def get_app(app_id: str) -> Response:
    tenant_id = current_operator().tenant_id
    app = apps.get_app(tenant_id, app_id)
    return ok(AppOut.from_domain(app, apps.secret_hints(tenant_id, app_id)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}",
    methods=("PATCH",),
    auth=MANAGERS,
    body=UpdateAppRequest,
    response=AppOut,
    summary="Change the fields sent (JSON merge patch; optimistic: send the version you read); login_callback_url and "
    "reminder_webhook_url are the owner's",
    errors=(400, 403, 404, 409),
)
def update_app(app_id: str) -> Response:
    caller = current_operator()
    app = apps.update_app(caller.tenant_id, app_id, parse_body(UpdateAppRequest), by=caller.username, role=caller.role)
    return ok(AppOut.from_domain(app))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/secrets/rotate",
    methods=("POST",),
    auth=OWNER,
    body=RotateSecretsRequest,
    response=RotateSecretsResponse,
    summary="Rotate secrets; the old values keep working for the grace period",
    errors=(400, 404, 409),
)
def rotate_secrets(app_id: str) -> Response:
    body = parse_body(RotateSecretsRequest)
    rotated = apps.rotate_secrets(current_operator().tenant_id, app_id, body.secrets)
    until = None
    if rotated.previous_valid_until is not None:
        until = iso(datetime.fromtimestamp(rotated.previous_valid_until, UTC))
    return ok(RotateSecretsResponse(secrets=AppSecretsOut(**rotated.values), previous_valid_until=until))


@admin.endpoint(
    "/v1/admin/operators",
    methods=("POST",),
    auth=OWNER,
    body=CreateOperatorRequest,
    response=OperatorOut,
    status=201,
    summary="Add an operator to the tenant",
    errors=(400, 409),
)
def create_operator() -> Response:
    operator = accounts.create_operator(current_operator().tenant_id, parse_body(CreateOperatorRequest))
    return ok(OperatorOut.from_domain(operator), status=201)


@admin.endpoint("/v1/admin/operators", auth=OWNER, response=OperatorList, query=PAGE, summary="The tenant's operators")
def list_operators() -> Response:
    page = accounts.list_operators(current_operator().tenant_id, query("cursor"), query_int("limit", 50, low=1, high=100))
    return ok(OperatorList(items=[OperatorOut.from_domain(o) for o in page.items], cursor=page.cursor))


@admin.endpoint(
    "/v1/admin/stores",
    methods=("POST",),
    auth=MANAGERS,
    body=CreateStoreRequest,
    response=StoreOut,
    status=201,
    summary="Create a store (for offline coupon redemption)",
)
def create_store() -> Response:
    store = accounts.create_store(current_operator().tenant_id, parse_body(CreateStoreRequest))
    return ok(StoreOut.from_domain(store), status=201)


@admin.endpoint("/v1/admin/stores", auth=ANY_OPERATOR, response=StoreList, query=PAGE, summary="The tenant's stores")
def list_stores() -> Response:
    page = accounts.list_stores(current_operator().tenant_id, query("cursor"), query_int("limit", 50, low=1, high=100))
    return ok(StoreList(items=[StoreOut.from_domain(s) for s in page.items], cursor=page.cursor))


@admin.endpoint("/v1/admin/stores/{store_id}", auth=ANY_OPERATOR, response=StoreOut, summary="One store", errors=(404,))
def get_store(store_id: str) -> Response:
    return ok(StoreOut.from_domain(accounts.get_store(current_operator().tenant_id, store_id)))


@admin.endpoint(
    "/v1/admin/stores/{store_id}/verifiers",
    methods=("POST",),
    auth=MANAGERS,
    body=CreateVerifierRequest,
    response=VerifierOut,
    status=201,
    summary="Create a verifier account for a store",
    errors=(400, 404, 409),
)
def create_verifier(store_id: str) -> Response:
    verifier = accounts.create_verifier(current_operator().tenant_id, store_id, parse_body(CreateVerifierRequest))
    return ok(VerifierOut(store_id=verifier.store_id, username=verifier.username, created_at=verifier.created_at), status=201)
