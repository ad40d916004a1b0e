"""CDK code pools (G1): operators upload a code file per import, start it, follow its report. Tenant from the token."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS
from chalicelib.core.http.api import Api, current_operator, ok, parse_body, raw_body
from chalicelib.mall import codes as pools
from chalicelib.mall.models.codes import CodeImportCreated, CodeImportOut, CodePoolSummary, CreateCodeImport

codes = Api(__name__, tag="admin")
START_MARGIN_SECONDS = 5.0


@codes.endpoint(
    "/v1/admin/goods/{goods_id}/code-imports",
    methods=("POST",),
    auth=MANAGERS,
    body=CreateCodeImport,
    response=CodeImportCreated,
    status=201,
    summary="A new code import of CDK goods: PUT the file (one code a line, text/plain) to upload_url",
    errors=(400, 404),
)
def create_code_import(goods_id: str) -> Response:
    operator = current_operator()
    body = parse_body(CreateCodeImport) if raw_body().strip() else CreateCodeImport()  # the body is optional
    record, url = pools.create_import(operator.tenant_id, goods_id, operator.username, body)
    path = f"/v1/admin/goods/{goods_id}/code-imports/{record.import_id}/start"
    created = CodeImportCreated(
        import_id=record.import_id,
        key=record.key,
        upload_url=url,
        headers={"Content-Type": "text/plain"},
        status=record.status,
        start_path=path,
    )
    return ok(created, status=201)


@codes.endpoint(
    "/v1/admin/goods/{goods_id}/code-imports/{import_id}/start",
    methods=("POST",),
    auth=MANAGERS,
    response=CodeImportOut,
    summary="Run the import for up to ~20 s from its checkpoint (again until done); the S3 upload also starts it",
    errors=(400, 404, 409),
)
def start_code_import(goods_id: str, import_id: str) -> Response:
    budget = pools.Budget.of(codes.current_request.lambda_context, cap=pools.API_BUDGET_SECONDS, margin=START_MARGIN_SECONDS)
    record = pools.start(current_operator().tenant_id, goods_id, import_id, budget)
    return ok(CodeImportOut.from_domain(record))


@codes.endpoint(
    "/v1/admin/goods/{goods_id}/code-imports/{import_id}",
    auth=ANY_OPERATOR,
    response=CodeImportOut,
    summary="An import's progress and report: lines, codes added, duplicates, invalid lines",
    errors=(400, 404),
)
def get_code_import(goods_id: str, import_id: str) -> Response:
    record = pools.get_import(current_operator().tenant_id, goods_id, import_id)
    return ok(CodeImportOut.from_domain(record))


@codes.endpoint(
    "/v1/admin/goods/{goods_id}/codes/summary",
    auth=ANY_OPERATOR,
    response=CodePoolSummary,
    summary="The code pool's counts: imported, issued, free",
    errors=(400, 404),
)
def code_pool_summary(goods_id: str) -> Response:
    return ok(pools.summary(current_operator().tenant_id, goods_id))
