"""Time is a parameter of the logic: production uses the system clock, tests pass their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock a test can set and move."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


_process_clock: Clock = SystemClock()


def time_now(clock: Clock | None = None) -> datetime:
    """The one way logic reads the time: the clock it was given, else the process's clock."""
    return (clock or _process_clock).now()


def process_clock() -> Clock:
    """The clock of logic that was given none (an adapter that keeps a clock takes this one)."""
    return _process_clock


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """For the block, every ``time_now()`` without a clock reads ``clock`` (tests driving the API over HTTP)."""
    global _process_clock
    previous, _process_clock = _process_clock, clock
    try:
        yield clock
    finally:
        _process_clock = previous


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
