"""A short-lived per-container cache of configuration (apps, tasks, listings, pages)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from chalicelib.core.config import get_settings


class TTLCache:
    """Config read on every request is cached for a few seconds per Lambda container.

    Never a source of truth for a decision that matters: the transaction's conditions are.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._items[key] = (now + self.seconds, value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache: TTLCache | None = None


def config_cache() -> TTLCache:
    global _cache
    if _cache is None:
        _cache = TTLCache(get_settings().config_cache_seconds)
    return _cache
