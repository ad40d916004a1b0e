"""App configuration documents (tasks, levels, ...) under the app's partition, cached briefly per container."""

from __future__ import annotations

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.core.errors import Conflict, NotFound
from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import ConfigItem


class ConfigDoc:
    def __init__(self, config_id: str, document: str, version: int, updated_at: str) -> None:
        self.config_id = config_id
        self.document = document
        self.version = version
        self.updated_at = updated_at


class ConfigRepo:
    """Documents of one kind: ``APP#{app}`` / ``{KIND}#{id}``, written with optimistic versions."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _forget(self, app_id: str) -> None:
        config_cache().forget((self.kind, app_id))

    def put(self, app_id: str, config_id: str, document: str, updated_at: str, expected_version: int | None) -> int:
        """Create (expected_version None) or replace the version the caller read. Returns the new version."""
        version = 1 if expected_version is None else expected_version + 1
        item = ConfigItem(
            PK=keys.app_pk(app_id),
            SK=keys.config_sk(self.kind, config_id),
            kind=self.kind,
            app_id=app_id,
            config_id=config_id,
            document=document,
            updated_at=updated_at,
            version=version,
        )
        condition = ConfigItem.PK.does_not_exist() if expected_version is None else (ConfigItem.version == expected_version)
        try:
            item.save(condition=condition)
        except PutError as exc:
            if condition_failed(exc):
                raise Conflict(f"The {self.kind} was changed by someone else (or exists already); read it again") from exc
            raise
        self._forget(app_id)
        return version

    def get(self, app_id: str, config_id: str) -> ConfigDoc | None:
        try:
            item = ConfigItem.get(keys.app_pk(app_id), keys.config_sk(self.kind, config_id))
        except ConfigItem.DoesNotExist:
            return None
        return ConfigDoc(item.config_id, item.document, int(item.version), item.updated_at)

    def all(self, app_id: str) -> list[ConfigDoc]:
        prefix = keys.config_sk(self.kind, "")
        return [
            ConfigDoc(item.config_id, item.document, int(item.version), item.updated_at)
            for item in ConfigItem.query(keys.app_pk(app_id), ConfigItem.SK.startswith(prefix))
        ]

    def all_cached(self, app_id: str) -> list[ConfigDoc]:
        docs: list[ConfigDoc] = config_cache().get((self.kind, app_id), lambda: self.all(app_id))
        return docs

    def delete(self, app_id: str, config_id: str) -> None:
        try:
            ConfigItem(PK=keys.app_pk(app_id), SK=keys.config_sk(self.kind, config_id)).delete(condition=ConfigItem.PK.exists())
        except DeleteError as exc:
            if condition_failed(exc):
                raise NotFound(f"No such {self.kind}") from exc
            raise
        self._forget(app_id)
