"""The base of every pydantic model: schemas are built on first use, not at import (cold start)."""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, TypeVar

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
