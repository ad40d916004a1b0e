"""Operator routes: the tenant's apps, operators, stores. Tenant comes from the operator token."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice.app import Response
from pydantic import ValidationError as PydanticValidationError

from chalicelib.adapters.payments import DouyinConfig, WechatPayConfig
from chalicelib.api.http import Api, current_operator, ok, parse_body, pydantic_details, query, query_day, query_int
from chalicelib.auth import ANY_OPERATOR, MANAGERS, OWNER, operator
from chalicelib.clock import iso
from chalicelib.errors import ValidationFailed
from chalicelib.logic import accounts, apps, expiry_jobs, levels, providers, receipts, tasks
from chalicelib.models.api import (
    AppList,
    AppOut,
    AppSecretsOut,
    CreateAppRequest,
    CreateAppResponse,
    CreateOperatorRequest,
    CreateStoreRequest,
    CreateVerifierRequest,
    Deleted,
    LadderIn,
    LadderOut,
    LevelOut,
    OperatorList,
    OperatorOut,
    OutboxEntry,
    OutboxPage,
    ProviderList,
    RotateSecretsRequest,
    RotateSecretsResponse,
    StoreList,
    StoreOut,
    TaskList,
    TaskReplace,
    TenantOut,
    UpdateAppRequest,
    VerifierOut,
)
from chalicelib.models.domain import Role
from chalicelib.models.receipts import ReceiptOut, ReviewDecision, ReviewItem, ReviewQueue
from chalicelib.models.tasks import Level, LevelLadder, Task, TaskIn

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
    summary="Change an app (optimistic: send the version you read)",
    errors=(400, 404, 409),
)
def update_app(app_id: str) -> Response:
    app = apps.update_app(current_operator().tenant_id, app_id, parse_body(UpdateAppRequest))
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


# --- tasks (K1, K2) --------------------------------------------------------------------------------


@admin.endpoint(
    "/v1/admin/apps/{app_id}/tasks",
    methods=("POST",),
    auth=MANAGERS,
    body=TaskIn,
    response=Task,
    status=201,
    summary="Create a task (any template of K2)",
    errors=(400, 404),
)
def create_task(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    return ok(tasks.create_task(app, parse_body(TaskIn).task), status=201)


@admin.endpoint("/v1/admin/apps/{app_id}/tasks", auth=ANY_OPERATOR, response=TaskList, summary="The app's tasks", errors=(404,))
def list_tasks(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    return ok(TaskList(items=tasks.list_tasks(app)))


@admin.endpoint("/v1/admin/apps/{app_id}/tasks/{task_id}", auth=ANY_OPERATOR, response=Task, summary="One task", errors=(404,))
def get_task(app_id: str, task_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    return ok(tasks.get_task(app, task_id))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/tasks/{task_id}",
    methods=("PUT",),
    auth=MANAGERS,
    body=TaskReplace,
    response=Task,
    summary="Replace a task (optimistic: send the version read); online / offline is the `online` field",
    errors=(400, 404, 409),
)
def replace_task(app_id: str, task_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    body = parse_body(TaskReplace)
    return ok(tasks.replace_task(app, task_id, body.task, body.version))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/tasks/{task_id}", methods=("DELETE",), auth=MANAGERS, response=Deleted, summary="Delete a task", errors=(404,)
)
def delete_task(app_id: str, task_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    tasks.delete_task(app, task_id)
    return ok(Deleted(deleted=True))


# --- levels (M1) -----------------------------------------------------------------------------------


def _ladder_out(ladder: LevelLadder, version: int) -> LadderOut:
    return LadderOut(levels=[LevelOut(**level.model_dump()) for level in ladder.levels], version=version)


@admin.endpoint("/v1/admin/apps/{app_id}/levels", auth=ANY_OPERATOR, response=LadderOut, summary="The level ladder", errors=(404,))
def get_levels(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    return ok(_ladder_out(*levels.get_ladder(app)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/levels",
    methods=("PUT",),
    auth=MANAGERS,
    body=LadderIn,
    response=LadderOut,
    summary="Replace the ladder (strictly increasing min_growth; optimistic version)",
    errors=(400, 404, 409),
)
def put_levels(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    body = parse_body(LadderIn)
    try:
        ladder = LevelLadder(levels=body.levels)
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid level ladder", details=pydantic_details(exc)) from None
    return ok(_ladder_out(ladder, levels.put_ladder(app, ladder, body.version)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/levels",
    methods=("POST",),
    auth=MANAGERS,
    body=Level,
    response=LadderOut,
    status=201,
    summary="Add one level",
    errors=(400, 404, 409),
)
def add_level(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    body = parse_body(Level)
    try:
        return ok(_ladder_out(*levels.add_level(app, body)), status=201)
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid level ladder", details=pydantic_details(exc)) from None


@admin.endpoint(
    "/v1/admin/apps/{app_id}/levels/{level_id}",
    methods=("DELETE",),
    auth=MANAGERS,
    response=LadderOut,
    summary="Remove a level",
    errors=(404, 409),
)
def delete_level(app_id: str, level_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    return ok(_ladder_out(*levels.remove_level(app, level_id)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/outbox",
    auth=ANY_OPERATOR,
    response=OutboxPage,
    query=("day", "cursor", "limit"),
    summary="Expiry reminders written on a day",
    errors=(404,),
)
def get_outbox(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    day = query_day(default=expiry_jobs.app_today(app))
    items, cursor = expiry_jobs.outbox(app, day, query("cursor"), query_int("limit", 100, low=1, high=500))
    return ok(OutboxPage(day=day, items=[OutboxEntry.model_validate(item) for item in items], cursor=cursor))


# --- receipt review (K3) ---------------------------------------------------------------------------

REVIEWERS = operator(Role.OWNER, Role.OPERATOR, Role.REVIEWER)


@admin.endpoint(
    "/v1/admin/apps/{app_id}/receipts",
    auth=REVIEWERS,
    response=ReviewQueue,
    query=("cursor", "limit"),
    summary="Receipts waiting for review, oldest first, with image links",
    errors=(404,),
)
def review_queue(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    items, cursor = receipts.review_queue(app, query("cursor"), query_int("limit", 50, low=1, high=100))
    out = [
        ReviewItem(**r.model_dump(include=set(ReviewItem.model_fields) - {"image_urls"}), image_urls=receipts.image_urls(r)) for r in items
    ]
    return ok(ReviewQueue(items=out, cursor=cursor))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/receipts/{receipt_id}/decision",
    metric="ReceiptDecided",
    methods=("POST",),
    auth=REVIEWERS,
    body=ReviewDecision,
    response=ReceiptOut,
    summary="Approve (points, once) or reject (with a reason) a receipt",
    errors=(400, 404, 409),
)
def decide_receipt(app_id: str, receipt_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    receipt = receipts.decide(app, receipt_id, current_operator().username, parse_body(ReviewDecision))
    return ok(ReceiptOut(**receipt.model_dump(include=set(ReceiptOut.model_fields))))


# --- payment providers -----------------------------------------------------------------------------


@admin.endpoint(
    "/v1/admin/apps/{app_id}/providers/wechatpay",
    methods=("PUT",),
    auth=OWNER,
    body=WechatPayConfig,
    response=ProviderList,
    summary="Configure WeChat Pay v3 notifications (platform key, serial, APIv3 key)",
    errors=(400, 404),
)
def put_wechatpay(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    providers.configure(app, parse_body(WechatPayConfig))
    return ok(ProviderList(items=providers.masked(app)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/providers/douyin",
    methods=("PUT",),
    auth=OWNER,
    body=DouyinConfig,
    response=ProviderList,
    summary="Configure Douyin payment callbacks (token)",
    errors=(400, 404),
)
def put_douyin(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    providers.configure(app, parse_body(DouyinConfig))
    return ok(ProviderList(items=providers.masked(app)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/providers",
    auth=ANY_OPERATOR,
    response=ProviderList,
    summary="Configured payment providers (secrets masked)",
    errors=(404,),
)
def list_providers(app_id: str) -> Response:
    app = apps.get_app(current_operator().tenant_id, app_id)
    return ok(ProviderList(items=providers.masked(app)))
