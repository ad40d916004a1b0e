"""The points mall and the e-commerce mall (G1–G8, E1–E2): goods, allocations, listings, orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.core.models import Model, omittable

Category = Literal["physical", "cdk", "coupon_link", "coupon", "points", "red_packet"]
Use = Literal["mall", "ecommerce"]
ListingStatus = Literal["draft", "online", "offline", "void"]
OrderStatus = Literal[
    "awaiting_payment",  # points + cash: points and stock held until the payment webhook (or the timeout)
    "paid",  # the payment webhook matched: the fulfilment workflow fulfils it next (moments)
    "awaiting_shipment",  # physical goods: an operator ships (carrier + tracking)
    "paying_out",  # cash red packet: the payout adapter is being called
    "shipped",
    "completed",
    "cancelled",  # payment timed out / payout failed: points and stock went back
    "refund_requested",  # after-sales (E2 / G8): waiting for a reviewer
    "refunded",
    "needs_attention",  # its workflow failed (or ended early): an operator re-drives or cancels it (``attention`` says why)
]
MAX_QUANTITY = 100
MAX_STOCK = 10_000_000
MAX_PRICE = 100_000_000
ID = Field(min_length=1, max_length=64)


def _parse_time(value: object) -> object:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _aware(*moments: datetime | None) -> None:
    for moment in moments:
        if moment is not None and moment.tzinfo is None:
            raise ValueError("times need a time zone (ISO 8601 with Z or an offset)")


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", strict=True)


def _check_tags(value: list[str]) -> list[str]:
    if any(not 1 <= len(tag) <= 32 for tag in value):
        raise ValueError("tags are 1-32 characters")
    return value


def _check_images(value: list[str]) -> list[str]:
    if any(not key.startswith("goods/") or len(key) > 256 or ".." in key for key in value):
        raise ValueError("images are keys from the image upload endpoint (goods/...)")
    return value


# --- G1 enterprise stock -----------------------------------------------------------------------------


class _GoodsChecks(_Strict):
    """The per-field checks of goods, shared by the full fields and the merge patch."""

    @field_validator("expires_at", mode="before", check_fields=False)
    @classmethod
    def _time(cls, value: object) -> object:
        return _parse_time(value)

    @field_validator("tags", check_fields=False)
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return _check_tags(value)

    @field_validator("images", check_fields=False)
    @classmethod
    def _images(cls, value: list[str]) -> list[str]:
        return _check_images(value)


class GoodsFields(_GoodsChecks):
    """What an operator may edit on goods (everything but the category and the quantity)."""

    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=4000)
    images: list[str] = Field(default_factory=list, max_length=9, description="keys returned by the image upload endpoint")
    expires_at: datetime | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    notes: str | None = Field(default=None, max_length=2000, description="internal; never shown to members")

    @model_validator(mode="after")
    def _zone(self) -> GoodsFields:
        _aware(self.expires_at)
        return self


class GoodsIn(GoodsFields):
    category: Category
    use: Use = "mall"
    total: int = Field(default=0, ge=0, le=MAX_STOCK, description="CDK goods start at 0: imported codes add to it")
    coupon_url: str | None = Field(default=None, max_length=1024, description="coupon_link: where the member redeems it")
    coupon_template_id: str | None = Field(default=None, max_length=64, description="coupon: the Jifen coupon template")
    points: int | None = Field(default=None, ge=1, le=1_000_000, description="points: credited per item to target_app_id")
    target_app_id: str | None = Field(default=None, max_length=64)
    amount_fen: int | None = Field(default=None, ge=1, le=20_000_000, description="red_packet: cash paid out per item")

    @model_validator(mode="after")
    def _category_fields(self) -> GoodsIn:
        needs: dict[str, tuple[str, ...]] = {
            "coupon_link": ("coupon_url",),
            "coupon": ("coupon_template_id",),
            "points": ("points", "target_app_id"),
            "red_packet": ("amount_fen",),
        }
        for name in needs.get(self.category, ()):
            if getattr(self, name) is None:
                raise ValueError(f"{self.category} goods need {name}")
        if self.coupon_url is not None and not self.coupon_url.startswith("https://"):
            raise ValueError("coupon_url must be an https URL")
        if self.use == "ecommerce" and self.category in ("points", "red_packet", "coupon"):
            raise ValueError("e-commerce goods are physical, CDK or coupon-link products")
        return self


class GoodsCreate(GoodsIn):
    """The request that enters goods: CDK goods start empty (their stock is the codes imported)."""

    @model_validator(mode="after")
    def _cdk_starts_empty(self) -> GoodsCreate:
        if self.category == "cdk" and self.total:
            raise ValueError("CDK goods start with total 0: upload a code file to add stock")
        return self


class GoodsPatch(_GoodsChecks):
    """A JSON merge patch (RFC 7396) of goods' editable fields: only the fields sent change; null clears a nullable one."""

    name: str = omittable(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=4000)
    images: list[str] = omittable(max_length=9, description="keys returned by the image upload endpoint")
    expires_at: datetime | None = None
    tags: list[str] = omittable(max_length=20)
    notes: str | None = Field(default=None, max_length=2000, description="internal; never shown to members")
    expected_version: int = Field(ge=1, description="the version you read (optimistic)")


class GoodsTopUp(_Strict):
    add: int = Field(ge=1, le=MAX_STOCK, description="total only grows")


class Goods(GoodsIn):
    model_config = ConfigDict(extra="forbid")

    goods_id: str
    tenant_id: str
    available: int = Field(description="not yet allocated to an app")
    created_at: str
    updated_at: str
    version: int


class GoodsList(Model):
    items: list[Goods]
    cursor: str | None = None


class ImageUploadRequest(_Strict):
    content_type: Literal["image/jpeg", "image/png", "image/webp"]


class ImageUpload(Model):
    key: str
    upload_url: str


# --- G2 allocation ---------------------------------------------------------------------------------


class PeriodLimits(_Strict):
    """How many items one member (or one device) may take per period; -1 = no limit."""

    day: int = Field(default=-1, ge=-1, le=1_000_000)
    week: int = Field(default=-1, ge=-1, le=1_000_000)
    month: int = Field(default=-1, ge=-1, le=1_000_000)
    half_year: int = Field(default=-1, ge=-1, le=1_000_000)
    year: int = Field(default=-1, ge=-1, le=1_000_000)

    def active(self) -> dict[str, int]:
        return {period: limit for period, limit in self.model_dump().items() if limit >= 0}


class AllocationSettings(_Strict):
    """The editable part of an allocation."""

    auto_fulfil: bool = True
    member_limits: PeriodLimits = Field(default_factory=PeriodLimits)
    device_limits: PeriodLimits = Field(default_factory=PeriodLimits)
    total_out_limit: int = Field(default=-1, ge=-1, le=MAX_STOCK, description="most items ever handed out; -1 = none")
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    online: bool = True

    @field_validator("valid_from", "valid_to", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        return _parse_time(value)

    @model_validator(mode="after")
    def _window(self) -> AllocationSettings:
        _aware(self.valid_from, self.valid_to)
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_from must be before valid_to")
        return self


class AllocationIn(AllocationSettings):
    goods_id: str = ID
    quantity: int = Field(ge=1, le=MAX_STOCK)
    shards: int = Field(default=4, ge=1, le=32, description="stock shards: more shards, more exchanges per second")


class PeriodLimitsPatch(_Strict):
    """Merged into the allocation's limits: only the periods sent change (-1 = no limit)."""

    day: int = omittable(ge=-1, le=1_000_000)
    week: int = omittable(ge=-1, le=1_000_000)
    month: int = omittable(ge=-1, le=1_000_000)
    half_year: int = omittable(ge=-1, le=1_000_000)
    year: int = omittable(ge=-1, le=1_000_000)


class AllocationPatch(_Strict):
    """A JSON merge patch (RFC 7396) of an allocation's settings: only the fields sent change, limits merge per period."""

    auto_fulfil: bool = omittable()
    member_limits: PeriodLimitsPatch = omittable()
    device_limits: PeriodLimitsPatch = omittable()
    total_out_limit: int = omittable(ge=-1, le=MAX_STOCK, description="most items ever handed out; -1 = none")
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    online: bool = omittable()
    expected_version: int = Field(ge=1)

    @field_validator("valid_from", "valid_to", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        return _parse_time(value)


class StockChange(_Strict):
    quantity: int = Field(ge=1, le=MAX_STOCK)


class Allocation(AllocationSettings):
    model_config = ConfigDict(extra="forbid")

    allocation_id: str
    app_id: str
    goods_id: str
    category: Category
    use: Use
    shards: int
    quantity: int = Field(description="allocated to the app, net of returns")
    stock: int | None = Field(default=None, description="left in the shards (read live)")
    created_at: str
    updated_at: str
    version: int


class AllocationList(Model):
    items: list[Allocation]


# --- G3 listings -----------------------------------------------------------------------------------


class ListingFields(_Strict):
    title: str | None = Field(default=None, max_length=64, description="defaults to the goods name")
    subtitle: str | None = Field(default=None, max_length=128)
    price_points: int = Field(default=0, ge=0, le=MAX_PRICE)
    price_fen: int = Field(default=0, ge=0, le=MAX_PRICE, description="cash part, paid through the payment webhook")
    strike_points: int | None = Field(default=None, ge=0, le=MAX_PRICE)
    strike_fen: int | None = Field(default=None, ge=0, le=MAX_PRICE)
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    delivery_days: int | None = Field(default=None, ge=0, le=365)
    points_back_on_return: bool = Field(default=False, description="G8: a returned order gives its points back")
    max_per_order: int = Field(default=10, ge=1, le=MAX_QUANTITY)
    payment_timeout_seconds: int = Field(default=900, ge=60, le=86_400, description="points + cash: unpaid orders cancel after")
    sort_weight: int = Field(default=0, ge=-1_000_000, le=1_000_000)

    @field_validator("sale_starts_at", "sale_ends_at", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        return _parse_time(value)

    @model_validator(mode="after")
    def _prices(self) -> ListingFields:
        _aware(self.sale_starts_at, self.sale_ends_at)
        if self.sale_starts_at and self.sale_ends_at and self.sale_starts_at >= self.sale_ends_at:
            raise ValueError("sale_starts_at must be before sale_ends_at")
        if self.price_points == 0 and self.price_fen == 0:
            raise ValueError("a listing costs points, cash or both")
        return self


class ListingIn(ListingFields):
    allocation_id: str = ID
    status: Literal["draft", "online", "offline"] = "online"


class ListingPatch(_Strict):
    """A JSON merge patch (RFC 7396) of a listing: only the fields sent change; null clears a nullable one."""

    title: str = omittable(min_length=1, max_length=64)
    subtitle: str | None = Field(default=None, max_length=128)
    price_points: int = omittable(ge=0, le=MAX_PRICE)
    price_fen: int = omittable(ge=0, le=MAX_PRICE, description="cash part, paid through the payment webhook")
    strike_points: int | None = Field(default=None, ge=0, le=MAX_PRICE)
    strike_fen: int | None = Field(default=None, ge=0, le=MAX_PRICE)
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    delivery_days: int | None = Field(default=None, ge=0, le=365)
    points_back_on_return: bool = omittable(description="G8: a returned order gives its points back")
    max_per_order: int = omittable(ge=1, le=MAX_QUANTITY)
    payment_timeout_seconds: int = omittable(ge=60, le=86_400, description="points + cash: unpaid orders cancel after")
    sort_weight: int = omittable(ge=-1_000_000, le=1_000_000)
    expected_version: int = Field(ge=1)

    @field_validator("sale_starts_at", "sale_ends_at", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        return _parse_time(value)


class ListingStatusChange(_Strict):
    status: ListingStatus


class Listing(ListingFields):
    model_config = ConfigDict(extra="forbid")

    listing_id: str
    app_id: str
    allocation_id: str
    goods_id: str
    category: Category
    use: Use
    title: str
    status: ListingStatus
    created_at: str
    updated_at: str
    version: int


class ListingView(Model):
    """What a member sees: the listing, its images and live availability."""

    listing_id: str
    title: str
    subtitle: str | None
    category: Category
    use: Use
    description: str | None
    images: list[str]
    price_points: int
    price_fen: int
    strike_points: int | None
    strike_fen: int | None
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    delivery_days: int | None
    max_per_order: int
    stock: int
    on_sale: bool
    not_on_sale_reason: str | None = None
    needs_address: bool


class ListingPage(Model):
    items: list[ListingView]
    cursor: str | None = None


class AdminListingList(Model):
    items: list[Listing]


# --- G4 exchange, orders ---------------------------------------------------------------------------


class Address(_Strict):
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=5, max_length=32, pattern=r"^[0-9+\- ]+$")
    province: str = Field(default="", max_length=64)
    city: str = Field(default="", max_length=64)
    district: str = Field(default="", max_length=64)
    detail: str = Field(min_length=1, max_length=256)
    postcode: str | None = Field(default=None, max_length=16)


class ExchangeRequest(_Strict):
    listing_id: str = ID
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    address: Address | None = None


class Shipment(_Strict):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")


class Fulfilment(Model):
    codes: list[str] | None = None  # CDK codes: only ever shown to the order's owner
    url: str | None = None
    points_credited: int | None = None
    target_app_id: str | None = None
    payout_reference: str | None = None
    carrier: str | None = None
    tracking_no: str | None = None
    shipped_at: str | None = None


class Order(Model):
    order_id: str
    app_id: str
    member_id: str
    openid: str
    listing_id: str
    allocation_id: str
    goods_id: str
    category: Category
    use: Use
    title: str
    quantity: int
    points: int = Field(description="points paid (total)")
    cash_fen: int = Field(description="cash to pay (total)")
    status: OrderStatus
    address: Address | None = None
    shards: dict[str, int] = Field(default_factory=dict, description="stock taken per shard (returned the same way)")
    fulfilment: Fulfilment = Field(default_factory=Fulfilment)
    points_back_on_return: bool = False
    reason: str | None = None
    created_at: str
    updated_at: str
    paid_at: str | None = None
    completed_at: str | None = None
    refund: dict[str, Any] | None = None
    attention: dict[str, Any] | None = Field(
        default=None, description="needs_attention: the status it left (from_status), the error, when; kept after an operator acts"
    )
    payment_refund: dict[str, Any] | None = Field(
        default=None, description="the cash of a cancelled order given back (a payment that came late, or an operator cancel)"
    )
    drive: int = Field(default=0, description="how often its workflow was re-driven (the execution's name suffix)")
    version: int = 1


class OrderView(Model):
    """An order as its member sees it (codes included: the member owns them)."""

    order_id: str
    listing_id: str
    title: str
    category: Category
    quantity: int
    points: int
    cash_fen: int
    status: OrderStatus
    address: Address | None
    fulfilment: Fulfilment
    reason: str | None
    created_at: str
    paid_at: str | None
    completed_at: str | None
    refund: dict[str, Any] | None
    attention: dict[str, Any] | None = None
    payment_refund: dict[str, Any] | None = None

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls(**order.model_dump(include=set(cls.model_fields)))


class OrderPage(Model):
    items: list[OrderView]
    cursor: str | None = None
