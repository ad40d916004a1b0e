"""The per-container config cache (issue 9, item 17c): one loader per key, expiry stamped after the load."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.core.table.cache import TTLCache


class SlowLoader:
    """Counts its calls; each takes ``seconds`` and returns the call number."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
            call = self.calls
        time.sleep(self.seconds)
        return call


def together(cache: TTLCache, loader: SlowLoader, callers: int = 8) -> list[tuple[Any, float]]:
    """``callers`` threads read one key at once: (value, seconds each took)."""
    start = threading.Barrier(callers)

    def read(_: int) -> tuple[Any, float]:
        start.wait()
        began = time.monotonic()
        value = cache.get("listing", loader)
        return value, time.monotonic() - began

    with ThreadPoolExecutor(max_workers=callers) as pool:
        return list(pool.map(read, range(callers)))


def test_concurrent_reads_of_a_missing_key_load_it_once() -> None:
    # Given an empty cache and a slow loader
    cache, loader = TTLCache(seconds=30), SlowLoader(0.3)
    # When eight requests read the key at once
    results = together(cache, loader)
    # Then one of them loaded it and all got its value
    assert loader.calls == 1
    assert [value for value, _ in results] == [1] * 8


def test_the_expiry_is_stamped_after_the_load() -> None:
    # Given a loader slower than the cache's lifetime
    cache, loader = TTLCache(seconds=0.5), SlowLoader(0.6)
    # When the key is read, and read again right after
    assert cache.get("listing", loader) == 1
    # Then the second read is a hit: the value is fresh for `seconds` from when it was loaded
    assert cache.get("listing", loader) == 1
    assert loader.calls == 1


def test_reads_after_expiry_reload_once_and_the_others_get_the_stale_value_meanwhile() -> None:
    # Given a cached value that has just expired
    cache, loader = TTLCache(seconds=0.2), SlowLoader(0.4)
    assert cache.get("listing", loader) == 1
    time.sleep(0.25)
    # When eight requests read it at once
    results = together(cache, loader)
    # Then one reload ran; the seven others did not wait for it and got the stale value
    assert loader.calls == 2
    values = sorted(value for value, _ in results)
    assert values == [1] * 7 + [2]
    assert sorted(took for _, took in results)[6] < 0.2
    # And afterwards the reloaded value is served
    assert cache.get("listing", loader) == 2
    assert loader.calls == 2


def test_forget_during_a_load_keeps_the_loaded_value_out_of_the_cache() -> None:
    # Given a load in progress
    cache, loader = TTLCache(seconds=30), SlowLoader(0.3)
    reader = threading.Thread(target=cache.get, args=("listing", loader))
    reader.start()
    time.sleep(0.1)
    # When the key is forgotten (the config was written) before the load ends
    cache.forget("listing")
    reader.join()
    # Then the value read before the write is not kept: the next read loads again
    assert cache.get("listing", loader) == 2
    assert loader.calls == 2


def test_a_failed_load_caches_nothing_and_the_next_read_loads_again() -> None:
    # Given a loader that fails once
    cache = TTLCache(seconds=30)

    def failing() -> int:
        raise RuntimeError("table unreachable")

    with pytest.raises(RuntimeError):
        cache.get("listing", failing)
    # When the key is read again
    # Then it is loaded
    assert cache.get("listing", lambda: 7) == 7
    assert cache.get("listing", failing) == 7


def test_waiters_of_a_failed_load_load_for_themselves() -> None:
    # Given a first loader that fails slowly while others wait for it
    cache = TTLCache(seconds=30)
    calls = {"n": 0}
    lock = threading.Lock()

    def flaky() -> int:
        with lock:
            calls["n"] += 1
            first = calls["n"] == 1
        time.sleep(0.2)
        if first:
            raise RuntimeError("table unreachable")
        return 5

    def read(_: int) -> Any:
        try:
            return cache.get("listing", flaky)
        except RuntimeError:
            return "error"

    # When four read at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(read, range(4)))
    # Then only the first reader sees the error; the others got a value
    assert sorted(map(str, outcomes)) == ["5", "5", "5", "error"]


def test_clear_empties_the_cache() -> None:
    cache = TTLCache(seconds=30)
    assert cache.get("a", lambda: 1) == 1
    cache.clear()
    assert cache.get("a", lambda: 2) == 2
