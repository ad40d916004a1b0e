"""Mall decoration routes (G7): page drafts, previews, publishing and history for operators; the live page for members."""

from __future__ import annotations

import base64

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS, MEMBER, PUBLIC
from chalicelib.core.auth.signing_key import signing_key
from chalicelib.core.clock import iso
from chalicelib.core.errors import NotFound, Unauthorized
from chalicelib.core.http.api import Api, current_member, current_operator, ok, parse_body, query, query_int
from chalicelib.mall import pages
from chalicelib.mall.models.pages import (
    HOME,
    ComponentView,
    Draft,
    DraftIn,
    ListingGrid,
    ListingGridView,
    MallPage,
    PageLayout,
    PageSummaryList,
    PageVersion,
    PageVersionList,
    PreviewOut,
    Promotion,
    PublishIn,
    RollbackIn,
    Showcase,
    ShowcaseView,
    TaskListComponent,
    TaskListView,
)
from chalicelib.tasks.public import task_out
from chalicelib.tenancy.access import caller_app, operator_app
from chalicelib.tenancy.models import App

page_admin = Api(__name__, tag="admin")
page_member = Api(__name__, tag="member")

PAGE = "/v1/admin/apps/{app_id}/pages/{page_id}"
PROMOTION = "/v1/admin/apps/{app_id}/listings/{listing_id}/promotion"


# --- operators -------------------------------------------------------------------------------------


@page_admin.endpoint(
    "/v1/admin/apps/{app_id}/pages",
    auth=ANY_OPERATOR,
    response=PageSummaryList,
    summary="The app's pages (those with a draft)",
    errors=(404,),
)
def list_mall_pages(app_id: str) -> Response:
    return ok(PageSummaryList(items=pages.list_pages(operator_app(app_id))))


@page_admin.endpoint(
    f"{PAGE}/draft",
    methods=("PUT",),
    auth=MANAGERS,
    body=DraftIn,
    response=Draft,
    summary="Save the page's draft (create: no expected_version; replace: the version you read)",
    errors=(400, 404, 409),
)
def put_page_draft(app_id: str, page_id: str) -> Response:
    app, body = operator_app(app_id), parse_body(DraftIn)
    return ok(pages.save_draft(app, page_id, body.page, body.expected_version, current_operator().username))


@page_admin.endpoint(f"{PAGE}/draft", auth=ANY_OPERATOR, response=Draft, summary="The page's draft", errors=(404,))
def get_page_draft(app_id: str, page_id: str) -> Response:
    return ok(pages.get_draft(operator_app(app_id), page_id))


@page_admin.endpoint(
    f"{PAGE}/preview",
    methods=("POST",),
    auth=ANY_OPERATOR,
    response=PreviewOut,
    status=201,
    summary="Snapshot the draft and get a 30-minute preview token (the credential of GET /v1/mall/page/preview)",
    errors=(404,),
)
def preview_page(app_id: str, page_id: str) -> Response:
    made = pages.preview(operator_app(app_id), page_id, current_operator().username, signing_key())
    return ok(PreviewOut(preview_token=made.token, expires_at=iso(made.expires_at), path=made.path), status=201)


@page_admin.endpoint(
    f"{PAGE}/publish",
    methods=("POST",),
    auth=MANAGERS,
    body=PublishIn,
    response=PageVersion,
    metric="PagePublished",
    summary="Publish the draft as a new version (atomic); the draft already live → that version, nothing written",
    errors=(400, 404, 409),
)
def publish_page(app_id: str, page_id: str) -> Response:
    app, body = operator_app(app_id), parse_body(PublishIn)
    return ok(pages.publish(app, page_id, current_operator().username, body.draft_version))


@page_admin.endpoint(
    f"{PAGE}/versions",
    auth=ANY_OPERATOR,
    response=PageVersionList,
    query=("cursor", "limit"),
    summary="Published versions, newest first (the live one is marked)",
    errors=(400, 404),
)
def list_page_versions(app_id: str, page_id: str) -> Response:
    found = pages.versions(operator_app(app_id), page_id, query("cursor"), query_int("limit", 20, low=1, high=100))
    return ok(PageVersionList(items=found.items, cursor=found.cursor))


@page_admin.endpoint(
    f"{PAGE}/versions/{{version}}", auth=ANY_OPERATOR, response=PageVersion, summary="One version with its page", errors=(404,)
)
def get_page_version(app_id: str, page_id: str, version: str) -> Response:
    if not (version.isascii() and version.isdigit() and len(version) <= 6 and int(version) >= 1):
        raise NotFound(f"Version {version[:8]} does not exist")
    return ok(pages.get_version(operator_app(app_id), page_id, int(version)))


@page_admin.endpoint(
    f"{PAGE}/rollback",
    methods=("POST",),
    auth=MANAGERS,
    body=RollbackIn,
    response=PageVersion,
    metric="PageRolledBack",
    summary="Make an older version live again (recorded as a new version; the draft is left alone)",
    errors=(400, 404, 409),
)
def rollback_page(app_id: str, page_id: str) -> Response:
    app, body = operator_app(app_id), parse_body(RollbackIn)
    return ok(pages.rollback(app, page_id, body.version, current_operator().username))


@page_admin.endpoint(
    PROMOTION, auth=ANY_OPERATOR, response=Promotion, summary="A listing's promotion link and its QR code (PNG, base64)", errors=(404,)
)
def get_promotion(app_id: str, listing_id: str) -> Response:
    link = pages.promotion_link(operator_app(app_id), listing_id)
    png = base64.b64encode(pages.qr_png(link.link)).decode()
    path = PROMOTION.format(app_id=app_id, listing_id=listing_id) + ".png"
    return ok(Promotion(listing_id=link.listing_id, path=link.path, link=link.link, qr_png_base64=png, qr_png_path=path))


@page_admin.endpoint(
    f"{PROMOTION}.png", auth=ANY_OPERATOR, summary="A listing's promotion QR code as image/png (send Accept: image/png)", errors=(404,)
)
def get_promotion_png(app_id: str, listing_id: str) -> Response:
    link = pages.promotion_link(operator_app(app_id), listing_id)
    return Response(
        body=pages.qr_png(link.link), status_code=200, headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=300"}
    )


# --- members ---------------------------------------------------------------------------------------


def _mall_page(app: App, page_id: str, page: PageLayout, member_id: str | None, version: PageVersion | None) -> MallPage:
    components: list[ComponentView] = []
    for part in pages.resolve(app, page, member_id):
        component = part.component
        if isinstance(component, Showcase):
            components.append(ShowcaseView(**dict(component), listings=part.listings))
        elif isinstance(component, ListingGrid):
            components.append(ListingGridView(**dict(component), listings=part.listings))
        elif isinstance(component, TaskListComponent):
            components.append(TaskListView(**dict(component), tasks=[task_out(p) for p in part.tasks]))
        else:
            components.append(component)
    return MallPage(
        page_id=page_id,
        version=version.version if version else None,
        preview=version is None,
        title=page.title,
        background_color=page.background_color,
        published_at=version.published_at if version else None,
        components=components,
    )


@page_member.endpoint(
    "/v1/mall/page",
    auth=MEMBER,
    response=MallPage,
    query=("page_id",),
    summary="The published mall page with its listings and my tasks resolved",
    errors=(404,),
)
def get_mall_page() -> Response:
    app, page_id = caller_app(), query("page_id", max_length=32) or HOME
    live, page = pages.live_page(app, page_id)
    return ok(_mall_page(app, page_id, page, current_member().member_id, live))


@page_member.endpoint(
    "/v1/mall/page/preview",
    auth=PUBLIC,
    response=MallPage,
    query=("token",),
    summary="A draft as previewed: the preview token (from the admin API, 30 minutes) is the credential",
    errors=(401, 404),
)
def get_mall_page_preview() -> Response:
    token = query("token", max_length=4096)
    if not token:
        raise Unauthorized("Missing preview token")
    app, page_id, page = pages.open_preview(token, signing_key())
    return ok(_mall_page(app, page_id, page, None, None))
