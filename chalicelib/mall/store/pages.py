"""Mall pages (G7) under the app's partition: a draft, immutable versions, the live pointer, preview snapshots.

APP#{app} / PAGEDRAFT#{page}               the draft (optimistic ``version``)
APP#{app} / PAGEVER#{page}#{n:06d}         version n, never changed once written
APP#{app} / PAGEPUB#{page}                 a copy of the live version (``version`` = n): members read one item
APP#{app} / PAGEPREVIEW#{page}#{preview}   the draft as it was when previewed (TTL)
"""

from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib.core.errors import Conflict
from chalicelib.core.models import Page, readable
from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import cancellation_reasons, condition_failed, transaction
from chalicelib.core.table.items import ConfigItem
from chalicelib.mall.models.pages import Draft, PageLayout, PageVersion

_DRAFT, _VERSION, _LIVE, _PREVIEW = "pagedraft", "pagever", "pagepub", "pagepreview"


def draft_sk(page_id: str) -> str:
    return keys.config_sk(_DRAFT, page_id)


def version_sk(page_id: str, version: int) -> str:
    return keys.config_sk(_VERSION, f"{page_id}#{version:06d}")


def live_sk(page_id: str) -> str:
    return keys.config_sk(_LIVE, page_id)


def preview_sk(page_id: str, preview_id: str) -> str:
    return keys.config_sk(_PREVIEW, f"{page_id}#{preview_id}")


def _draft(item: ConfigItem) -> Draft:
    document = json.loads(item.document)
    return Draft(
        page_id=item.config_id,
        page=PageLayout.model_validate(document["page"]),
        version=int(item.version),
        updated_at=item.updated_at,
        updated_by=document["updated_by"],
    )


def _version(item: ConfigItem, page_id: str, *, with_page: bool) -> PageVersion:
    document: dict[str, Any] = json.loads(item.document)
    stored = document.pop("page")
    page = PageLayout.model_validate(stored) if with_page else None
    return PageVersion(page_id=page_id, version=int(item.version), published_at=item.updated_at, page=page, **document)


def _version_item(app_id: str, sk: str, config_id: str, version: PageVersion, page: PageLayout) -> ConfigItem:
    document = version.model_dump(mode="json", include={"action", "source_version", "draft_version", "published_by"})
    document["page"] = page.model_dump(mode="json")
    return ConfigItem(
        PK=keys.app_pk(app_id),
        SK=sk,
        kind=_VERSION if sk.startswith(keys.config_sk(_VERSION, "")) else _LIVE,
        app_id=app_id,
        config_id=config_id,
        document=json.dumps(document, separators=(",", ":")),
        updated_at=version.published_at,
        version=version.version,
    )


class PagesRepo:
    def _forget(self, app_id: str, page_id: str) -> None:
        config_cache().forget((_LIVE, app_id, page_id))

    # --- draft ---

    def put_draft(self, app_id: str, draft: Draft, expected_version: int | None) -> Draft:
        version = 1 if expected_version is None else expected_version + 1
        item = ConfigItem(
            PK=keys.app_pk(app_id),
            SK=draft_sk(draft.page_id),
            kind=_DRAFT,
            app_id=app_id,
            config_id=draft.page_id,
            document=json.dumps({"page": draft.page.model_dump(mode="json"), "updated_by": draft.updated_by}, separators=(",", ":")),
            updated_at=draft.updated_at,
            version=version,
        )
        readable(lambda: _draft(item), "page draft")  # written only if the reader accepts it
        condition = ConfigItem.PK.does_not_exist() if expected_version is None else (ConfigItem.version == expected_version)
        try:
            item.save(condition=condition)
        except PutError as exc:
            if condition_failed(exc):
                raise Conflict("The draft was changed by someone else (or exists already): read it and send its version") from exc
            raise
        return draft.model_copy(update={"version": version})

    def get_draft(self, app_id: str, page_id: str) -> Draft | None:
        try:
            return _draft(ConfigItem.get(keys.app_pk(app_id), draft_sk(page_id), consistent_read=True))
        except ConfigItem.DoesNotExist:
            return None

    def drafts(self, app_id: str) -> list[Draft]:
        prefix = keys.config_sk(_DRAFT, "")
        return [_draft(item) for item in ConfigItem.query(keys.app_pk(app_id), ConfigItem.SK.startswith(prefix))]

    # --- versions ---

    def get_live(self, app_id: str, page_id: str) -> PageVersion | None:
        try:
            return _version(ConfigItem.get(keys.app_pk(app_id), live_sk(page_id), consistent_read=True), page_id, with_page=True)
        except ConfigItem.DoesNotExist:
            return None

    def get_live_cached(self, app_id: str, page_id: str) -> PageVersion | None:
        live: PageVersion | None = config_cache().get((_LIVE, app_id, page_id), lambda: self.get_live(app_id, page_id))
        return live

    def get_version(self, app_id: str, page_id: str, version: int) -> PageVersion | None:
        try:
            return _version(ConfigItem.get(keys.app_pk(app_id), version_sk(page_id, version)), page_id, with_page=True)
        except ConfigItem.DoesNotExist:
            return None

    def versions(self, app_id: str, page_id: str, cursor: str | None, limit: int) -> Page[PageVersion]:
        pk, prefix = keys.app_pk(app_id), keys.config_sk(_VERSION, f"{page_id}#")
        result = ConfigItem.query(
            pk,
            ConfigItem.SK.startswith(prefix),
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}, sk_prefix=prefix),
        )
        items = [_version(item, page_id, with_page=False) for item in result]
        return Page[PageVersion](items=items, cursor=encode_cursor(result.last_evaluated_key))

    def make_live(self, app_id: str, version: PageVersion, page: PageLayout, *, draft_version: int | None) -> None:
        """One transaction: write version n (new), point the live copy at it (it was n - 1), and, for a
        publish, check the draft is still the one read — so a publish is all or nothing and two racing
        publishes cannot both win."""
        page_id, n = version.page_id, version.version
        live_condition = ConfigItem.PK.does_not_exist() if n == 1 else (ConfigItem.version == n - 1)
        try:
            with transaction() as tx:
                if draft_version is not None:
                    tx.condition_check(ConfigItem, keys.app_pk(app_id), draft_sk(page_id), condition=ConfigItem.version == draft_version)
                tx.save(_version_item(app_id, version_sk(page_id, n), page_id, version, page), condition=ConfigItem.PK.does_not_exist())
                tx.save(_version_item(app_id, live_sk(page_id), page_id, version, page), condition=live_condition)
        except TransactWriteError as exc:
            if any(reason == "ConditionalCheckFailed" for reason in cancellation_reasons(exc)):
                raise Conflict("The page was changed meanwhile (draft edited or another publish): read it again") from exc
            raise
        finally:
            self._forget(app_id, page_id)

    # --- previews ---

    def put_preview(self, app_id: str, page_id: str, preview_id: str, page: PageLayout, created_at: str, expires_epoch: int) -> None:
        ConfigItem(
            PK=keys.app_pk(app_id),
            SK=preview_sk(page_id, preview_id),
            kind=_PREVIEW,
            app_id=app_id,
            config_id=page_id,
            document=page.model_dump_json(),
            updated_at=created_at,
            ttl=expires_epoch + 3600,  # the token expires first; TTL only tidies up
        ).save()

    def get_preview(self, app_id: str, page_id: str, preview_id: str) -> PageLayout | None:
        try:
            item = ConfigItem.get(keys.app_pk(app_id), preview_sk(page_id, preview_id))
        except ConfigItem.DoesNotExist:
            return None
        return PageLayout.model_validate_json(item.document)
