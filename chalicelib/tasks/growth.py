"""M2 growth reported by the tenant for a member task: added once per reference, the level follows."""

from __future__ import annotations

from chalicelib.core.clock import Clock
from chalicelib.core.errors import ValidationFailed
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import GuardSpec
from chalicelib.points.engine import Commit, Outcome, PointsRepo, ProfileChange, execute, fingerprint
from chalicelib.points.levels import level_id_for
from chalicelib.points.models import PointsProfile
from chalicelib.tasks.tasks import get_task
from chalicelib.tenancy.models import App


def add_growth(
    app: App, openid: str, task_id: str, reference: str, repo: PointsRepo | None = None, clock: Clock | None = None
) -> tuple[Outcome, int]:
    """M2: the tenant reports a completed member task; growth is added once per reference. Returns (outcome, growth)."""
    task = get_task(app, task_id)
    amount = task.definition.growth
    if amount <= 0:
        raise ValidationFailed("This task gives no growth value", details=[{"field": "task_id", "problem": "growth is 0"}])
    member_id = member_id_for(app.app_id, openid)
    fp = fingerprint("growth", openid, task_id)
    guard = GuardSpec(pk=keys.app_guard_pk(app.app_id, "growth", reference), sk=keys.GUARD_SK, result={}, fingerprint=fp)
    decided: dict[str, int] = {}

    def plan(profiles: list[PointsProfile]) -> Commit:
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
