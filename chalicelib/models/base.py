"""The base of every pydantic model: schemas are built on first use, not at import (cold start)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
