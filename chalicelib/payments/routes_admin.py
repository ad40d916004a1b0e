"""Operator routes of payment providers: an app's WeChat Pay and Douyin settings. Tenant from the operator
token.
"""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, OWNER
from chalicelib.core.http.api import Api, ok, parse_body
from chalicelib.payments import providers
from chalicelib.payments.adapter import DouyinConfig, WechatPayConfig
from chalicelib.payments.models import ProviderList
from chalicelib.tenancy.access import operator_app

admin = Api(__name__, tag="admin")
PAGE = ("cursor", "limit")


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
    app = operator_app(app_id)
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
    app = operator_app(app_id)
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
    app = operator_app(app_id)
    return ok(ProviderList(items=providers.masked(app)))
