"""A short-lived per-container cache of configuration (apps, tasks, listings, pages)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from chalicelib.core.config import get_settings

WAIT_SECONDS = 5.0  # how long a caller waits for another's load of the same key before loading itself


class _Load:
    """One load of one key in progress: the others wait for it (or read the stale value) instead of loading too."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None


class TTLCache:
    """Config read on every request is cached for a few seconds per Lambda container.

    Never a source of truth for a decision that matters: the transaction's conditions are.

    One loader per key: when a key is missing or expired, the first caller loads it; callers arriving
    meanwhile get the expired value if there is one, else wait for that load (a failed load lets each
    waiter load for itself). The expiry is stamped when the load finishes, so a slow load still caches
    for ``seconds``. ``forget`` drops the value and disowns a load in progress (it read before the change).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[Hashable, _Load] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            running = self._loading.get(key)
            if running is None:
                mine = self._loading[key] = _Load()
            elif hit is not None:
                return hit[1]  # expired, being reloaded by another caller: the stale value meanwhile
        if running is not None:
            # a loader that hangs (a stuck connection) never holds the others up: past the wait they load for themselves
            if not running.done.wait(WAIT_SECONDS):
                return load()
            return running.value if running.ok else load()
        return self._load(key, mine, load)

    def _load(self, key: Hashable, mine: _Load, load: Callable[[], Any]) -> Any:
        try:
            value = load()
        except BaseException:
            with self._lock:
                if self._loading.get(key) is mine:
                    del self._loading[key]
            mine.done.set()
            raise
        with self._lock:
            if self._loading.get(key) is mine:  # not forgotten meanwhile: keep it, fresh from now
                del self._loading[key]
                self._items[key] = (time.monotonic() + self.seconds, value)
        mine.value, mine.ok = value, True
        mine.done.set()
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._loading.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._loading.clear()


_cache: TTLCache | None = None


def config_cache() -> TTLCache:
    global _cache
    if _cache is None:
        _cache = TTLCache(get_settings().config_cache_seconds)
    return _cache
