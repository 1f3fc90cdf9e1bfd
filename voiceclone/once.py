"""Models loaded once per process, however many threads ask for them at the same moment."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class once(Generic[T]):  # noqa: N801 (used as a decorator, like functools.cache)
    """`load`, called on first use only; later calls return what it made. Two threads asking together wait for one
    load (a model is too large to load twice); a load that raises is tried again next time."""

    def __init__(self, load: Callable[[], T]):
        functools.update_wrapper(self, load)
        self._load = load
        self._lock = threading.Lock()
        self._made: list[T] = []  # empty until loaded (a list: None may be what a load makes)

    def __call__(self) -> T:
        with self._lock:
            if not self._made:
                self._made.append(self._load())
            return self._made[0]
