"""The tasks domain's public face for other domains: live tasks, a member's progress, how a client sees a task.

The mall's decorated pages show a task list; they use these, never the tasks store or its internals.
"""

from __future__ import annotations

from chalicelib.tasks.models import MemberTaskOut
from chalicelib.tasks.tasks import TaskProgress, cached_tasks, is_live, member_tasks, period

__all__ = ["TaskProgress", "cached_tasks", "is_live", "member_tasks", "period", "task_out"]

_CLIENT_FIELDS = (
    "bonuses",
    "url",
    "min_seconds",
    "ad_unit",
    "config_id",
    "activity_id",
    "listing_id",
    "starts_at",
    "ends_at",
    "max_images",
)


def task_out(progress: TaskProgress) -> MemberTaskOut:
    """A task with the member's progress, as GET /v1/tasks (and the mall page's task list) show it."""
    definition = progress.task.definition
    dumped = definition.model_dump(mode="json")
    return MemberTaskOut(
        task_id=progress.task.task_id,
        template=definition.template,
        title=definition.title,
        description=definition.description,
        points=definition.points,
        growth=definition.growth,
        cycle=definition.cycle.model_dump(),
        completions_per_cycle=progress.limit,
        done=progress.done,
        period=progress.period,
        details={k: dumped[k] for k in _CLIENT_FIELDS if k in dumped},
    )
