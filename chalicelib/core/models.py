"""The base of every pydantic model: schemas are built on first use, not at import (cold start)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


T = TypeVar("T")


class Page(Model, Generic[T]):
    items: list[T]
    cursor: str | None = None


ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"


class Strict(Model):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- points ----------------------------------------------------------------------------------------

REFERENCE = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:#@/-]+$")
OPENID = Field(min_length=1, max_length=128)


class Deleted(Model):
    deleted: bool


# --- writes: what a PATCH may send, and the record it leaves -----------------------------------------

M = TypeVar("M", bound=BaseModel)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**constraints: Any) -> Any:
    """A PATCH field that may be left out but is never null: its stored record cannot hold null.

    Annotate it with the plain type (``name: str = omittable(max_length=64)``); the published schema
    then says "string", not "string or null", and an explicit null is a 400 like any wrong type.
    Read such a patch only through ``model_dump(exclude_unset=True)``.
    """
    return Field(default=None, json_schema_extra=_no_default, **constraints)


def merge_patch(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 on plain data: objects merge key by key, anything else (lists, null, scalars) replaces."""
    merged = dict(current)
    for name, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = merge_patch(merged[name], value)
        else:
            merged[name] = value
    return merged


def checked(model: type[M], data: Any, what: str = "record") -> M:
    """The record a write would leave, validated by the model its reader uses: refused (400) before it is written."""
    return readable(lambda: model.model_validate(data), what)


def readable(read: Callable[[], T], what: str = "record") -> T:
    """``read()`` (a store's reader applied to what is about to be written); a record it rejects is a 400, not a write."""
    from pydantic import ValidationError

    from chalicelib.core.errors import ValidationFailed

    try:
        return read()
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]) or "body", "problem": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed(f"The change would leave an invalid {what}", details=details[:20]) from None
