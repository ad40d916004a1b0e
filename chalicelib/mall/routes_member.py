"""Member routes of the mall (G3, G4, G6): listings with live stock, the exchange, the member's orders."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import MEMBER
from chalicelib.core.http.api import Api, current_member, idempotency_key, ok, parse_body, query, query_int
from chalicelib.mall import exchange, listings
from chalicelib.mall.models.catalog import ExchangeRequest, ListingPage, ListingView, OrderPage, OrderView
from chalicelib.tenancy.access import caller_app

shop = Api(__name__, tag="member")


@shop.endpoint(
    "/v1/mall/listings",
    auth=MEMBER,
    response=ListingPage,
    query=("cursor", "limit"),
    summary="Listings on sale, best first, with live stock",
    errors=(400,),
)
def list_listings() -> Response:
    items, cursor = listings.listing_page(caller_app(), query("cursor"), query_int("limit", 20, low=1, high=100))
    return ok(ListingPage(items=items, cursor=cursor))


@shop.endpoint("/v1/mall/listings/{listing_id}", auth=MEMBER, response=ListingView, summary="One listing with live stock", errors=(404,))
def get_listing(listing_id: str) -> Response:
    return ok(listings.member_listing(caller_app(), listing_id))


@shop.endpoint(
    "/v1/mall/exchanges",
    methods=("POST",),
    auth=MEMBER,
    body=ExchangeRequest,
    response=OrderView,
    status=201,
    headers=("Idempotency-Key",),
    metric="MallExchanged",
    summary="Exchange: points (and stock, limits) taken, order created — all or nothing",
    errors=(400, 404, 409),
)
def create_exchange() -> Response:
    caller = current_member()
    body = parse_body(ExchangeRequest)
    order = exchange.exchange(caller_app(), caller.member_id, caller.openid, caller.device_id, body, idempotency_key())
    # a repeated Idempotency-Key answers as the first time did: 201 with the same order
    return ok(OrderView.of(order), status=201)


@shop.endpoint(
    "/v1/me/orders", auth=MEMBER, response=OrderPage, query=("cursor", "limit"), summary="My orders, newest first", errors=(400,)
)
def my_orders() -> Response:
    caller = current_member()
    page = exchange.member_orders(caller_app(), caller.member_id, query("cursor"), query_int("limit", 20, low=1, high=100))
    return ok(OrderPage(items=[OrderView.of(order) for order in page.items], cursor=page.cursor))


@shop.endpoint("/v1/me/orders/{order_id}", auth=MEMBER, response=OrderView, summary="One of my orders (codes, shipping)", errors=(404,))
def my_order(order_id: str) -> Response:
    return ok(OrderView.of(exchange.member_order(caller_app(), current_member().member_id, order_id)))
