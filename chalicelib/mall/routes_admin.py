"""Operator routes of the mall (G1–G3): enterprise goods, app allocations, listings. Tenant from the token."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS
from chalicelib.core.http.api import Api, current_operator, ok, parse_body, query, query_int
from chalicelib.mall import allocations, goods, listings
from chalicelib.mall.models.catalog import (
    AdminListingList,
    Allocation,
    AllocationIn,
    AllocationList,
    AllocationPatch,
    Goods,
    GoodsCreate,
    GoodsList,
    GoodsPatch,
    GoodsTopUp,
    ImageUpload,
    ImageUploadRequest,
    Listing,
    ListingIn,
    ListingPatch,
    ListingStatusChange,
    StockChange,
)
from chalicelib.tenancy.access import operator_app

mall_admin = Api(__name__, tag="admin")


# --- G1 goods --------------------------------------------------------------------------------------


@mall_admin.endpoint(
    "/v1/admin/goods",
    methods=("POST",),
    auth=MANAGERS,
    body=GoodsCreate,
    response=Goods,
    status=201,
    summary="Enter goods (G1)",
    errors=(400,),
)
def create_goods() -> Response:
    return ok(goods.create_goods(current_operator().tenant_id, parse_body(GoodsCreate)), status=201)


@mall_admin.endpoint("/v1/admin/goods", auth=ANY_OPERATOR, response=GoodsList, query=("cursor", "limit"), summary="The tenant's goods")
def list_goods() -> Response:
    page = goods.list_goods(current_operator().tenant_id, query("cursor"), query_int("limit", 50, low=1, high=100))
    return ok(GoodsList(items=page.items, cursor=page.cursor))


@mall_admin.endpoint("/v1/admin/goods/{goods_id}", auth=ANY_OPERATOR, response=Goods, summary="One goods item", errors=(404,))
def get_goods(goods_id: str) -> Response:
    return ok(goods.get_goods(current_operator().tenant_id, goods_id))


@mall_admin.endpoint(
    "/v1/admin/goods/{goods_id}",
    methods=("PATCH",),
    auth=MANAGERS,
    body=GoodsPatch,
    response=Goods,
    summary="Edit goods (optimistic: send the version you read); category and quantity are not editable",
    errors=(400, 404, 409),
)
def edit_goods(goods_id: str) -> Response:
    return ok(goods.edit_goods(current_operator().tenant_id, goods_id, parse_body(GoodsPatch)))


@mall_admin.endpoint(
    "/v1/admin/goods/{goods_id}/stock",
    methods=("POST",),
    auth=MANAGERS,
    body=GoodsTopUp,
    response=Goods,
    summary="Add to the total quantity (it only grows)",
    errors=(400, 404),
)
def add_goods_stock(goods_id: str) -> Response:
    return ok(goods.add_goods_stock(current_operator().tenant_id, goods_id, parse_body(GoodsTopUp).add))


@mall_admin.endpoint(
    "/v1/admin/goods/images",
    methods=("POST",),
    auth=MANAGERS,
    body=ImageUploadRequest,
    response=ImageUpload,
    status=201,
    summary="A presigned upload URL for a goods image; put the returned key in the goods' images",
    errors=(400,),
)
def goods_image() -> Response:
    key, url = goods.image_upload(current_operator().tenant_id, parse_body(ImageUploadRequest).content_type)
    return ok(ImageUpload(key=key, upload_url=url), status=201)


# --- G2 allocations --------------------------------------------------------------------------------


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/allocations",
    methods=("POST",),
    auth=MANAGERS,
    body=AllocationIn,
    response=Allocation,
    status=201,
    summary="Allocate goods to the app's sub-stock (never more than is unallocated)",
    errors=(400, 404, 409),
)
def create_allocation(app_id: str) -> Response:
    return ok(allocations.create_allocation(operator_app(app_id), parse_body(AllocationIn)), status=201)


@mall_admin.endpoint("/v1/admin/apps/{app_id}/allocations", auth=ANY_OPERATOR, response=AllocationList, summary="The app's allocations")
def list_allocations(app_id: str) -> Response:
    return ok(AllocationList(items=allocations.list_allocations(operator_app(app_id))))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/allocations/{allocation_id}", auth=ANY_OPERATOR, response=Allocation, summary="One allocation", errors=(404,)
)
def get_allocation(app_id: str, allocation_id: str) -> Response:
    return ok(allocations.get_allocation(operator_app(app_id), allocation_id))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/allocations/{allocation_id}",
    methods=("PATCH",),
    auth=MANAGERS,
    body=AllocationPatch,
    response=Allocation,
    summary="Limits, validity, online / offline, auto-fulfil (optimistic)",
    errors=(400, 404, 409),
)
def edit_allocation(app_id: str, allocation_id: str) -> Response:
    return ok(allocations.edit_allocation(operator_app(app_id), allocation_id, parse_body(AllocationPatch)))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/allocations/{allocation_id}/top-ups",
    methods=("POST",),
    auth=MANAGERS,
    body=StockChange,
    response=Allocation,
    summary="Allocate more of the goods to this app",
    errors=(400, 404, 409),
)
def top_up(app_id: str, allocation_id: str) -> Response:
    return ok(allocations.top_up(operator_app(app_id), allocation_id, parse_body(StockChange).quantity))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/allocations/{allocation_id}/returns",
    methods=("POST",),
    auth=MANAGERS,
    body=StockChange,
    response=Allocation,
    summary="Return unsold stock to the goods",
    errors=(400, 404, 409),
)
def give_back(app_id: str, allocation_id: str) -> Response:
    return ok(allocations.give_back(operator_app(app_id), allocation_id, parse_body(StockChange).quantity))


# --- G3 listings -----------------------------------------------------------------------------------


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/listings",
    methods=("POST",),
    auth=MANAGERS,
    body=ListingIn,
    response=Listing,
    status=201,
    summary="List an allocation in the mall: price, window, delivery",
    errors=(400, 404),
)
def create_listing(app_id: str) -> Response:
    return ok(listings.create_listing(operator_app(app_id), parse_body(ListingIn)), status=201)


@mall_admin.endpoint("/v1/admin/apps/{app_id}/listings", auth=ANY_OPERATOR, response=AdminListingList, summary="Every listing of the app")
def list_listings(app_id: str) -> Response:
    return ok(AdminListingList(items=listings.list_listings(operator_app(app_id))))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/listings/{listing_id}", auth=ANY_OPERATOR, response=Listing, summary="One listing", errors=(404,)
)
def get_listing(app_id: str, listing_id: str) -> Response:
    return ok(listings.get_listing(operator_app(app_id), listing_id))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/listings/{listing_id}",
    methods=("PATCH",),
    auth=MANAGERS,
    body=ListingPatch,
    response=Listing,
    summary="Edit a listing (optimistic); an exchange decided on the old version is decided again",
    errors=(400, 404, 409),
)
def edit_listing(app_id: str, listing_id: str) -> Response:
    return ok(listings.edit_listing(operator_app(app_id), listing_id, parse_body(ListingPatch)))


@mall_admin.endpoint(
    "/v1/admin/apps/{app_id}/listings/{listing_id}/status",
    methods=("POST",),
    auth=MANAGERS,
    body=ListingStatusChange,
    response=Listing,
    summary="online / offline / draft / void (void is final); takes effect on the next exchange",
    errors=(400, 404, 409),
)
def listing_status(app_id: str, listing_id: str) -> Response:
    return ok(listings.set_listing_status(operator_app(app_id), listing_id, parse_body(ListingStatusChange).status))
