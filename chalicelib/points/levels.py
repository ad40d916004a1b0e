"""Member levels (M1, M2): a ladder of minimum growth values, and the level a growth value reaches."""

from __future__ import annotations

from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import NotFound, ValidationFailed
from chalicelib.core.models import readable
from chalicelib.core.table.config import ConfigRepo
from chalicelib.points.models import Level, LevelLadder
from chalicelib.tenancy.models import App

LADDER_ID = "ladder"


def levels_repo() -> ConfigRepo:
    return ConfigRepo("levels")


def get_ladder(app: App, repo: ConfigRepo | None = None) -> tuple[LevelLadder, int]:
    doc = (repo or levels_repo()).get(app.app_id, LADDER_ID)
    if doc is None:
        return LevelLadder(levels=[]), 0
    return LevelLadder.model_validate_json(doc.document), doc.version


def put_ladder(app: App, ladder: LevelLadder, expected_version: int, repo: ConfigRepo | None = None, clock: Clock | None = None) -> int:
    """Replace the whole ladder (optimistic: the version read, 0 when there is none yet)."""
    now, document = iso(time_now(clock)), ladder.model_dump_json()
    readable(lambda: LevelLadder.model_validate_json(document), "level ladder")  # written only if the reader accepts it
    return (repo or levels_repo()).put(app.app_id, LADDER_ID, document, now, expected_version or None)


def add_level(app: App, level: Level, repo: ConfigRepo | None = None) -> tuple[LevelLadder, int]:
    ladder, version = get_ladder(app, repo)
    if any(existing.level_id == level.level_id for existing in ladder.levels):
        raise ValidationFailed("A level with this id exists", details=[{"field": "level_id", "problem": "duplicate"}])
    levels = sorted([*ladder.levels, level], key=lambda lv: lv.min_growth)
    new = LevelLadder.model_validate({"levels": [lv.model_dump() for lv in levels]})
    return new, put_ladder(app, new, version, repo)


def remove_level(app: App, level_id: str, repo: ConfigRepo | None = None) -> tuple[LevelLadder, int]:
    ladder, version = get_ladder(app, repo)
    kept = [lv for lv in ladder.levels if lv.level_id != level_id]
    if len(kept) == len(ladder.levels):
        raise NotFound("Level not found")
    new = LevelLadder(levels=kept)
    return new, put_ladder(app, new, version, repo)


def cached_ladder(app: App) -> LevelLadder:
    docs = levels_repo().all_cached(app.app_id)
    doc = next((d for d in docs if d.config_id == LADDER_ID), None)
    return LevelLadder.model_validate_json(doc.document) if doc else LevelLadder(levels=[])


def level_for(ladder: LevelLadder, growth: int) -> Level | None:
    """The highest level whose minimum growth is reached."""
    reached = [level for level in ladder.levels if level.min_growth <= growth]
    return reached[-1] if reached else None


def level_id_for(app: App, growth: int) -> str | None:
    level = level_for(cached_ladder(app), growth)
    return level.level_id if level else None
