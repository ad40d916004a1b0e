"""Mall decoration (G7): draft → preview → publish, version history, rollback; the page with its data resolved.

Every publish and every rollback writes a new immutable version and moves the live copy to it in the
same transaction, so the history is append-only and says who made what live, when.
"""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.core import aws
from chalicelib.core.auth import tokens
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from chalicelib.core.models import Page
from chalicelib.mall import listings as mall_listings
from chalicelib.mall.models.catalog import ListingView
from chalicelib.mall.models.pages import (
    PAGE_ID_PATTERN,
    ActivityEntry,
    BannerCarousel,
    BottomNav,
    Component,
    Draft,
    ListingGrid,
    PageLayout,
    PageSummary,
    PageVersion,
    Showcase,
    TaskListComponent,
    is_image_key,
)
from chalicelib.mall.store.pages import PagesRepo
from chalicelib.tasks import public as tasks
from chalicelib.tasks.public import TaskProgress
from chalicelib.tenancy.access import app_by_id
from chalicelib.tenancy.models import App

PREVIEW_TTL_SECONDS = 30 * 60
T = TypeVar("T")
PREVIEW_PATH = "/v1/mall/page/preview"
LISTING_PATH = "/pages/mall/listing"
_PAGE_ID = re.compile(PAGE_ID_PATTERN)


def check_page_id(page_id: str) -> str:
    if not _PAGE_ID.match(page_id):
        raise ValidationFailed(
            "A page id is 1-32 lowercase letters, digits, _ or -", details=[{"field": "page_id", "problem": "invalid page id"}]
        )
    return page_id


# --- admin: draft, publish, history, rollback ------------------------------------------------------


def _images(component: Component) -> list[tuple[str, str]]:
    """(field, image reference) of every image a component shows."""
    if isinstance(component, BannerCarousel):
        return [(f"slides.{i}.image", slide.image) for i, slide in enumerate(component.slides)]
    if isinstance(component, BottomNav):
        return [(f"items.{i}.icon", item.icon) for i, item in enumerate(component.items)]
    if isinstance(component, ActivityEntry) and component.image is not None:
        return [("image", component.image)]
    return []


def _check_images(app: App, page: PageLayout) -> None:
    """Uploaded images must be this tenant's: members get signed URLs for them, so another tenant's key would leak it."""
    own = f"goods/{app.tenant_id}/"
    details = [
        {"field": f"page.components.{index}.{name}", "problem": "not an image uploaded by this tenant"}
        for index, component in enumerate(page.components)
        for name, ref in _images(component)
        if is_image_key(ref) and not ref.startswith(own)
    ]
    if details:
        raise ValidationFailed("The page uses images this tenant did not upload", details=details[:20])


def _with_urls(component: Component) -> Component:
    """Upload keys become short-lived download URLs (as listing images do); https URLs stay as they are."""

    def url(ref: str) -> str:
        return aws.download_url(ref) if is_image_key(ref) else ref

    if isinstance(component, BannerCarousel):
        return component.model_copy(update={"slides": [s.model_copy(update={"image": url(s.image)}) for s in component.slides]})
    if isinstance(component, BottomNav):
        return component.model_copy(update={"items": [i.model_copy(update={"icon": url(i.icon)}) for i in component.items]})
    if isinstance(component, ActivityEntry) and component.image is not None:
        return component.model_copy(update={"image": url(component.image)})
    return component


def save_draft(
    app: App,
    page_id: str,
    page: PageLayout,
    expected_version: int | None,
    by: str,
    repo: PagesRepo | None = None,
    clock: Clock | None = None,
) -> Draft:
    _check_images(app, page)
    draft = Draft(page_id=check_page_id(page_id), page=page, version=0, updated_at=iso(time_now(clock)), updated_by=by)
    return (repo or PagesRepo()).put_draft(app.app_id, draft, expected_version)


def get_draft(app: App, page_id: str, repo: PagesRepo | None = None) -> Draft:
    draft = (repo or PagesRepo()).get_draft(app.app_id, check_page_id(page_id))
    if draft is None:
        raise NotFound("This page has no draft")
    return draft


def list_pages(app: App, repo: PagesRepo | None = None) -> list[PageSummary]:
    """Every page of the app that has a draft, with the version live now (admin only: one read per page)."""
    repo = repo or PagesRepo()
    summaries = []
    for draft in repo.drafts(app.app_id):
        live = repo.get_live(app.app_id, draft.page_id)
        summaries.append(
            PageSummary(
                page_id=draft.page_id,
                title=draft.page.title,
                draft_version=draft.version,
                updated_at=draft.updated_at,
                live_version=live.version if live else None,
            )
        )
    return summaries


def publish(
    app: App, page_id: str, by: str, draft_version: int | None = None, repo: PagesRepo | None = None, clock: Clock | None = None
) -> PageVersion:
    """The draft becomes version n+1 and goes live. Publishing the draft that is already live changes nothing (a retry)."""
    repo = repo or PagesRepo()
    draft = get_draft(app, page_id, repo)
    if draft_version is not None and draft_version != draft.version:
        raise Conflict(f"The draft is at version {draft.version}, not {draft_version}: preview it again before publishing")
    live = repo.get_live(app.app_id, page_id)
    if live is not None and live.action == "publish" and live.draft_version == draft.version:
        return live.model_copy(update={"live": True, "page": None})
    version = PageVersion(
        page_id=page_id,
        version=(live.version if live else 0) + 1,
        action="publish",
        draft_version=draft.version,
        published_at=iso(time_now(clock)),
        published_by=by,
        live=True,
    )
    repo.make_live(app.app_id, version, draft.page, draft_version=draft.version)
    return version


def rollback(app: App, page_id: str, to_version: int, by: str, repo: PagesRepo | None = None, clock: Clock | None = None) -> PageVersion:
    """Make an older version's content live again, recorded as a new version (the history is never rewritten)."""
    repo = repo or PagesRepo()
    live = repo.get_live(app.app_id, check_page_id(page_id))
    if live is None:
        raise NotFound("This page was never published")
    if to_version == live.version or (live.action == "rollback" and live.source_version == to_version):
        return live.model_copy(update={"live": True, "page": None})  # already live: a retry changes nothing
    target = repo.get_version(app.app_id, page_id, to_version) if to_version < live.version else None
    if target is None or target.page is None:
        raise NotFound(f"Version {to_version} does not exist")
    version = PageVersion(
        page_id=page_id,
        version=live.version + 1,
        action="rollback",
        source_version=to_version,
        published_at=iso(time_now(clock)),
        published_by=by,
        live=True,
    )
    repo.make_live(app.app_id, version, target.page, draft_version=None)
    return version


def versions(app: App, page_id: str, cursor: str | None, limit: int, repo: PagesRepo | None = None) -> Page[PageVersion]:
    """History, newest first; the newest version is the live one."""
    repo = repo or PagesRepo()
    page = repo.versions(app.app_id, check_page_id(page_id), cursor, limit)
    live = repo.get_live(app.app_id, page_id)
    items = [item.model_copy(update={"live": live is not None and item.version == live.version}) for item in page.items]
    return Page[PageVersion](items=items, cursor=page.cursor)


def get_version(app: App, page_id: str, version: int, repo: PagesRepo | None = None) -> PageVersion:
    repo = repo or PagesRepo()
    found = repo.get_version(app.app_id, check_page_id(page_id), version)
    if found is None:
        raise NotFound(f"Version {version} does not exist")
    live = repo.get_live(app.app_id, page_id)
    return found.model_copy(update={"live": live is not None and live.version == version})


# --- preview ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    token: str
    expires_at: datetime
    path: str


class _PreviewClaims(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    ten: str
    app: str
    page: str
    pvw: str


def preview(app: App, page_id: str, by: str, key: str, repo: PagesRepo | None = None, clock: Clock | None = None) -> Preview:
    """Snapshot the draft and sign a short-lived token for it: whoever holds the token sees that snapshot, nothing else.

    The token is a Jifen token of its own type (audience ``jifen:preview``): it is refused as a member or
    operator token, and member or operator tokens are refused here.
    """
    repo = repo or PagesRepo()
    draft = get_draft(app, page_id, repo)
    now = time_now(clock)
    expires = now + timedelta(seconds=PREVIEW_TTL_SECONDS)
    preview_id = secrets.token_hex(8)
    repo.put_preview(app.app_id, page_id, preview_id, draft.page, iso(now), epoch(expires))
    claims = {"sub": by, "ten": app.tenant_id, "app": app.app_id, "page": page_id, "pvw": preview_id, "dv": draft.version}
    token = tokens.issue(key, "preview", claims, epoch(now), PREVIEW_TTL_SECONDS)
    return Preview(token=token, expires_at=expires, path=f"{PREVIEW_PATH}?token={token}")


def open_preview(token: str, key: str, repo: PagesRepo | None = None, clock: Clock | None = None) -> tuple[App, str, PageLayout]:
    """(app, page id, the draft as previewed) for a valid, unexpired preview token."""
    raw = tokens.verify(key, "preview", token, epoch(time_now(clock)))
    try:
        claims = _PreviewClaims.model_validate(raw)
    except ValidationError:
        raise Unauthorized("Token is not valid") from None
    app = app_by_id(claims.app)
    if app is None or app.tenant_id != claims.ten or not _PAGE_ID.match(claims.page):
        raise NotFound("Preview not found")
    page = (repo or PagesRepo()).get_preview(app.app_id, claims.page, claims.pvw[:32])
    if page is None:
        raise NotFound("Preview not found")
    return app, claims.page, page


# --- members: the live page, resolved --------------------------------------------------------------


def live_page(app: App, page_id: str, repo: PagesRepo | None = None) -> tuple[PageVersion, PageLayout]:
    """The version members see now and its page (from the few-second config cache)."""
    live = (repo or PagesRepo()).get_live_cached(app.app_id, check_page_id(page_id))
    if live is None or live.page is None:
        raise NotFound("This page is not published")
    return live, live.page


@dataclass(frozen=True)
class Resolved:
    """A component with the data it shows: listings for showcases and grids, tasks (with progress) for task lists."""

    component: Component
    listings: list[ListingView] = field(default_factory=list)
    tasks: list[TaskProgress] = field(default_factory=list)


def _preview_tasks(app: App, at: datetime) -> list[TaskProgress]:
    """Live tasks as a member who has done none of them sees them."""
    live = [task for task in tasks.cached_tasks(app) if tasks.is_live(task.definition, at)]
    return [
        TaskProgress(task=task, done=0, limit=task.definition.completions_per_cycle, period=tasks.period(task.definition.cycle, app, at)[0])
        for task in live
    ]


def resolve(app: App, page: PageLayout, member_id: str | None, clock: Clock | None = None) -> list[Resolved]:
    """Each component with its data; listings and tasks are read once for the whole page.

    Unknown, offline or removed listing / task ids are dropped silently: a page must not break because
    a listing was taken offline after it was published. ``member_id`` None = a preview (no member data).
    """
    everything = _page_listings(app, page, member_id, clock)
    listings = {view.listing_id: view for view in everything}
    progress = _page_tasks(app, page, member_id, clock)
    by_task = {p.task.task_id: p for p in progress}
    resolved = []
    for component in page.components:
        if isinstance(component, Showcase):
            resolved.append(Resolved(component, listings=_pick(listings, component.listing_ids)))
        elif isinstance(component, ListingGrid):
            chosen = everything if component.listing_ids is None else _pick(listings, component.listing_ids)
            resolved.append(Resolved(component, listings=chosen[: component.limit]))
        elif isinstance(component, TaskListComponent):
            picked = progress if component.task_ids is None else _pick(by_task, component.task_ids)
            resolved.append(Resolved(component, tasks=picked[: component.limit]))
        else:
            resolved.append(Resolved(_with_urls(component)))
    return resolved


def _pick(found: dict[str, T], ids: list[str]) -> list[T]:
    """The ones of ``ids`` that were found, in the page's order."""
    return [found[i] for i in ids if i in found]


def _page_listings(app: App, page: PageLayout, member_id: str | None, clock: Clock | None) -> list[ListingView]:
    """Every listing the page's showcases and grids show, in one read (all live listings if a grid shows "all")."""
    parts = [c for c in page.components if isinstance(c, Showcase | ListingGrid)]
    if not parts:
        return []
    wanted = None if any(c.listing_ids is None for c in parts) else list(dict.fromkeys(i for c in parts for i in c.listing_ids or []))
    return mall_listings.member_listings(app, member_id, wanted, clock=clock)


def _page_tasks(app: App, page: PageLayout, member_id: str | None, clock: Clock | None) -> list[TaskProgress]:
    if not any(isinstance(c, TaskListComponent) for c in page.components):
        return []
    return tasks.member_tasks(app, member_id, clock=clock) if member_id else _preview_tasks(app, time_now(clock))


# --- promotion link + QR code (per listing) --------------------------------------------------------


@dataclass(frozen=True)
class PromotionLink:
    listing_id: str
    path: str
    link: str


def promotion_link(app: App, listing_id: str) -> PromotionLink:
    """The listing's in-app path; behind the configured H5 base URL when there is one (what a phone camera can open)."""
    mall_listings.get_listing(app, listing_id)
    path = f"{LISTING_PATH}?listing_id={quote(listing_id, safe='')}&app_id={quote(app.app_id, safe='')}"
    base = get_settings().mall_link_base
    return PromotionLink(listing_id=listing_id, path=path, link=f"{base.rstrip('/')}{path}" if base else path)


QR_SCALE = 8  # pixels per module: ~300 px for a typical link, sharp enough to print
QR_BORDER = 4  # the quiet zone the QR standard asks for


def qr_png(text: str) -> bytes:
    import segno  # lazy: only the promotion routes need it (cold start)

    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buffer.getvalue()
