"""Mall decoration (G7): page layouts of typed components, their versions, and the page members see."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from chalicelib.core.models import Model
from chalicelib.mall.models.catalog import ListingView
from chalicelib.tasks.models import MemberTaskOut

PAGE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
HOME = "home"
MAX_COMPONENTS = 50
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")  # no whitespace, control characters or backslashes anywhere in a link
_IMAGE_KEY = re.compile(r"^goods/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


def _https(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname) and value.startswith("https://")


def _link(value: str) -> str:
    """Where a tap goes: an https URL or an in-app path ("/pages/..."); never javascript:, data:, http: or "//host"."""
    if _CONTROL.search(value):
        raise ValueError("links may not contain spaces, control characters or backslashes")
    if value.startswith("/") and not value.startswith("//"):
        return value
    if _https(value):
        return value
    raise ValueError("links are https URLs or in-app paths starting with /")


def _image(value: str) -> str:
    """A key from the image upload endpoint (goods/{tenant}/...) or an https URL."""
    if _CONTROL.search(value):
        raise ValueError("image references may not contain spaces or control characters")
    if _https(value) or (_IMAGE_KEY.match(value) and ".." not in value):
        return value
    raise ValueError("images are keys from the image upload endpoint (goods/...) or https URLs")


def is_image_key(value: str) -> bool:
    return not value.startswith("https://")


Link = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_link)]
Image = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_image)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Title = Annotated[str, Field(min_length=1, max_length=64)]


def _unique(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise ValueError("ids must not repeat")
    return ids


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- components ------------------------------------------------------------------------------------


class Slide(_Strict):
    image: Image
    link: Link | None = None
    title: str | None = Field(default=None, max_length=64)


class BannerCarousel(_Strict):
    type: Literal["banner_carousel"]
    slides: list[Slide] = Field(min_length=1, max_length=10)
    interval_seconds: int = Field(default=5, ge=1, le=30)


class Showcase(_Strict):
    """Hand-picked listings, in this order."""

    type: Literal["showcase"]
    title: Title
    listing_ids: Annotated[list[Id], AfterValidator(_unique)] = Field(min_length=1, max_length=20)


class ListingGrid(_Strict):
    """A grid of listings: the ones named, or (listing_ids null) every listing of GET /v1/mall/listings, in its order."""

    type: Literal["listing_grid"]
    title: str | None = Field(default=None, max_length=64)
    listing_ids: Annotated[list[Id], Field(min_length=1, max_length=100), AfterValidator(_unique)] | None = None
    columns: int = Field(default=2, ge=1, le=4)
    limit: int = Field(default=20, ge=1, le=100)


class TaskListComponent(_Strict):
    """The member's tasks with progress: the ones named, or (task_ids null) every live task."""

    type: Literal["task_list"]
    title: str | None = Field(default=None, max_length=64)
    task_ids: Annotated[list[Id], Field(min_length=1, max_length=50), AfterValidator(_unique)] | None = None
    limit: int = Field(default=10, ge=1, le=50)


class ActivityEntry(_Strict):
    """An entry to an activity (draws and games); only its id is stored until activities exist."""

    type: Literal["activity_entry"]
    activity_id: Id
    title: Title
    image: Image | None = None
    link: Link | None = None


class NavItem(_Strict):
    label: str = Field(min_length=1, max_length=16)
    icon: Image
    link: Link


class BottomNav(_Strict):
    type: Literal["bottom_nav"]
    items: list[NavItem] = Field(min_length=2, max_length=5)


class CustomerService(_Strict):
    type: Literal["customer_service"]
    title: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 -]{1,30}$")
    wechat: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    url: Link | None = None
    hours: str | None = Field(default=None, max_length=64, description="free text, e.g. 09:00-21:00 daily")

    @model_validator(mode="after")
    def _reachable(self) -> CustomerService:
        if self.phone is None and self.wechat is None and self.url is None:
            raise ValueError("customer service needs a phone, a wechat id or a url")
        return self


Component = Annotated[
    BannerCarousel | Showcase | ListingGrid | TaskListComponent | ActivityEntry | BottomNav | CustomerService,
    Field(discriminator="type"),
]


class PageLayout(_Strict):
    """A page layout: components top to bottom (a bottom nav is pinned to the bottom wherever it is listed)."""

    title: Title
    background_color: str = Field(default="#FFFFFF", pattern=r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")
    components: list[Component] = Field(min_length=1, max_length=MAX_COMPONENTS)

    @model_validator(mode="after")
    def _one_nav(self) -> PageLayout:
        if sum(1 for c in self.components if isinstance(c, BottomNav)) > 1:
            raise ValueError("a page has at most one bottom_nav")
        return self


# --- admin requests / responses --------------------------------------------------------------------


class DraftIn(_Strict):
    page: PageLayout
    expected_version: int | None = Field(default=None, ge=1, description="the draft version you read; omit to create the draft")


class Draft(Model):
    page_id: str
    page: PageLayout
    version: int
    updated_at: str
    updated_by: str


class PublishIn(_Strict):
    draft_version: int | None = Field(default=None, ge=1, description="publish only if the draft is still this version")


class RollbackIn(_Strict):
    version: int = Field(ge=1, le=999_999)


class PageVersion(Model):
    """One immutable entry of a page's history: a publish of the draft, or a rollback to an older version."""

    page_id: str
    version: int
    action: Literal["publish", "rollback"]
    source_version: int | None = Field(default=None, description="rollback: the version whose content this restores")
    draft_version: int | None = Field(default=None, description="publish: the draft version published")
    published_at: str
    published_by: str
    live: bool = False
    page: PageLayout | None = Field(default=None, description="in single-version reads only")


class PageVersionList(Model):
    items: list[PageVersion]
    cursor: str | None = None


class PageSummary(Model):
    page_id: str
    title: str
    draft_version: int
    updated_at: str
    live_version: int | None


class PageSummaryList(Model):
    items: list[PageSummary]


class PreviewOut(Model):
    preview_token: str
    expires_at: str
    path: str = Field(description="GET this path (the token is the credential) to see the draft as it was when previewed")


class Promotion(Model):
    listing_id: str
    path: str = Field(description="in-app path of the listing")
    link: str = Field(description="what the QR code encodes: the path, behind the H5 base URL when one is configured")
    qr_png_base64: str
    qr_png_path: str = Field(description="the same PNG as image/png (send Accept: image/png)")


# --- what members see ------------------------------------------------------------------------------


class ShowcaseView(Showcase):
    listings: list[ListingView]


class ListingGridView(ListingGrid):
    listings: list[ListingView]


class TaskListView(TaskListComponent):
    tasks: list[MemberTaskOut]


ComponentView = Annotated[
    BannerCarousel | ShowcaseView | ListingGridView | TaskListView | ActivityEntry | BottomNav | CustomerService,
    Field(discriminator="type"),
]


class MallPage(Model):
    page_id: str
    version: int | None = Field(description="null in a preview")
    preview: bool = False
    title: str
    background_color: str
    published_at: str | None
    components: list[ComponentView]
