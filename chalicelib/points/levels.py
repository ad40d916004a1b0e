"""Member levels (M1, M2): a ladder of minimum growth values; growth added once per reference."""

from __future__ import annotations

from chalicelib.core.clock import Clock, SystemClock, iso
from chalicelib.core.errors import NotFound, ValidationFailed
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import keys
from chalicelib.core.table.config import ConfigRepo
from chalicelib.core.txn.unit import GuardSpec
from chalicelib.points.engine import Outcome, execute, fingerprint
from chalicelib.points.models import Level, LevelLadder, PointsProfile
from chalicelib.points.store.points import Commit, PointsRepo
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
    now = iso((clock or SystemClock()).now())
    return (repo or levels_repo()).put(app.app_id, LADDER_ID, ladder.model_dump_json(), now, expected_version or None)


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


def add_growth(
    app: App, openid: str, task_id: str, reference: str, repo: PointsRepo | None = None, clock: Clock | None = None
) -> tuple[Outcome, int]:
    """M2: the tenant reports a completed member task; growth is added once per reference. Returns (outcome, growth)."""
    from chalicelib.tasks.tasks import get_task

    task = get_task(app, task_id)
    amount = task.definition.growth
    if amount <= 0:
        raise ValidationFailed("This task gives no growth value", details=[{"field": "task_id", "problem": "growth is 0"}])
    member_id = member_id_for(app.app_id, openid)
    fp = fingerprint("growth", openid, task_id)
    guard = GuardSpec(pk=keys.app_guard_pk(app.app_id, "growth", reference), sk=keys.GUARD_SK, result={}, fingerprint=fp)
    decided: dict[str, int] = {}

    def plan(profiles: list[PointsProfile]) -> Commit:
        from chalicelib.points.store.points import ProfileChange

        profile = profiles[0]
        growth = profile.growth + amount
        decided["growth"] = growth
        level_id = level_id_for(app, growth)
        change = ProfileChange(expected_version=profile.version, growth_add=amount, sets={"level": level_id} if level_id else {})
        result = GuardSpec(pk=guard.pk, sk=guard.sk, result={"growth_added": amount, "task_id": task_id}, fingerprint=fp)
        return Commit(app.app_id, member_id, profile=change, guards=[result])

    outcome = execute([(app.app_id, member_id)], plan, guard, repo or PointsRepo(), expected_fingerprint=fp)
    growth = decided.get("growth") if outcome.applied else None
    if growth is None:  # a repeated reference: the member's growth as it is now
        current = (repo or PointsRepo()).get_profile(app.app_id, member_id)
        growth = current.growth if current else 0
    return outcome, growth
