"""Scheduled points jobs: expire due points (hourly), write expiry reminders (daily)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.observability import count, log_event
from chalicelib.points import expiry_jobs

# Leave head-room under the Lambda timeout (infra: JOB_TIMEOUT_SECONDS); what is left is picked up by the next run.
BUDGET_SECONDS = 240.0
REMINDER_BUDGET_SECONDS = 240.0


def expire_points(event: Any) -> dict[str, Any]:
    run = expiry_jobs.run_expiry(budget_seconds=BUDGET_SECONDS)
    log_event("expiry_run", **run.__dict__)
    count("PointsExpired", run.points)
    return run.__dict__


def remind_expiring_points(event: Any) -> dict[str, Any]:
    run = expiry_jobs.run_reminders(budget_seconds=REMINDER_BUDGET_SECONDS)
    log_event("reminder_run", **run.__dict__)
    count("ExpiryRemindersWritten", run.members_changed)
    return run.__dict__
