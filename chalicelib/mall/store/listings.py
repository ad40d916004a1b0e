"""Listings (G3) under the app, and the gates their versions set on the allocation's stock shards."""

from __future__ import annotations

import json

from pynamodb.exceptions import TransactWriteError

from chalicelib.core import stock
from chalicelib.core.errors import Conflict
from chalicelib.core.models import readable
from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.dynamo import cancellation_reasons, transaction
from chalicelib.core.table.items import ConfigItem
from chalicelib.mall.models.catalog import Listing

# --- listings (G3) ---------------------------------------------------------------------------------


def _listing(item: ConfigItem) -> Listing:
    return Listing(
        **json.loads(item.document),
        listing_id=item.config_id,
        app_id=item.app_id,
        status=item.status or "draft",  # type: ignore[arg-type]  # validated by Listing
        updated_at=item.updated_at,
        version=int(item.version),
    )


class ListingsRepo:
    KIND = "listing"

    def _forget(self, app_id: str) -> None:
        config_cache().forget((self.KIND, app_id))

    def put(self, listing: Listing, expected_version: int | None, shards: int) -> Listing:
        """The listing, and its gate on every shard of its allocation (its version when online, else 0), together."""
        version = 1 if expected_version is None else expected_version + 1
        document = listing.model_dump_json(exclude={"listing_id", "app_id", "status", "updated_at", "version"})
        item = ConfigItem(
            PK=keys.app_pk(listing.app_id),
            SK=keys.config_sk(self.KIND, listing.listing_id),
            kind=self.KIND,
            app_id=listing.app_id,
            config_id=listing.listing_id,
            document=document,
            updated_at=listing.updated_at,
            version=version,
            status=listing.status,
        )
        readable(lambda: _listing(item), "listing")  # what is written is what the reader accepts
        condition = ConfigItem.PK.does_not_exist() if expected_version is None else (ConfigItem.version == expected_version)
        tx = transaction()
        tx.save(item, condition=condition)
        gate = version if listing.status == "online" else 0
        for shard in range(shards):
            tx.update(stock.shard_item(listing.app_id, listing.allocation_id, shard), actions=[stock.gate(listing.listing_id).set(gate)])
        try:
            tx._commit()
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in cancellation_reasons(exc):
                raise Conflict("The listing was changed by someone else; read it again") from exc
            raise
        self._forget(listing.app_id)
        return listing.model_copy(update={"version": version})

    def get(self, app_id: str, listing_id: str) -> Listing | None:
        try:
            item = ConfigItem.get(keys.app_pk(app_id), keys.config_sk(self.KIND, listing_id), consistent_read=True)
        except ConfigItem.DoesNotExist:
            return None
        return _listing(item)

    def all(self, app_id: str) -> list[Listing]:
        prefix = keys.config_sk(self.KIND, "")
        return [_listing(item) for item in ConfigItem.query(keys.app_pk(app_id), ConfigItem.SK.startswith(prefix))]

    def all_cached(self, app_id: str) -> list[Listing]:
        listings: list[Listing] = config_cache().get((self.KIND, app_id), lambda: self.all(app_id))
        return listings

    def forget(self, app_id: str) -> None:
        self._forget(app_id)
