"""A small in-process cache of computed views, keyed by the store's state.

Metrics over millions of activities take seconds; pages must answer in milliseconds.  A value is
kept until the store's state key changes (an import run, a merge, an inbox change: see
:func:`parvis.web.queries.store_state`).  The state key itself is re-read every ``STATE_TTL``
seconds, so changes made by another process (an import running beside the server) show up within
that delay.  Enrichments written by ``parvis enrich`` leave no import run behind: a value is also
recomputed once it is ``TTL`` seconds old.  Concurrent
requests for the same missing value wait for one computation instead of all running it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from parvis.store import Store
from parvis.web.queries import store_state

T = TypeVar("T")
STATE_TTL = 2.0
TTL = 300.0
MAX_ENTRIES = 128


class ViewCache:
    def __init__(self) -> None:
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self._state: dict[str, tuple[float, tuple[object, ...]]] = {}

    def state(self, store: Store) -> tuple[object, ...]:
        """The store's state key, itself read at most every ``STATE_TTL`` seconds."""
        url = store.engine.url.render_as_string(hide_password=True)
        now = time.monotonic()
        with self._guard:
            known = self._state.get(url)
        if known is not None and now - known[0] < STATE_TTL:
            return known[1]
        state = store_state(store)
        with self._guard:
            self._state[url] = (now, state)
        return state

    def get(self, store: Store, key: Hashable, compute: Callable[[], T]) -> T:
        full = (store.engine.url.render_as_string(hide_password=True), self.state(store), key)
        with self._guard:
            found = self._values.get(full)
            if found is not None and time.monotonic() - found[0] < TTL:
                self._values.move_to_end(full)
                return found[1]  # type: ignore[no-any-return]
            lock = self._locks.setdefault(full, threading.Lock())
        with lock:
            with self._guard:
                found = self._values.get(full)
                if found is not None and time.monotonic() - found[0] < TTL:
                    return found[1]  # type: ignore[no-any-return]
            value = compute()
            with self._guard:
                self._values[full] = (time.monotonic(), value)
                self._values.move_to_end(full)
                while len(self._values) > MAX_ENTRIES:
                    old, _ = self._values.popitem(last=False)
                    self._locks.pop(old, None)
                self._locks.pop(full, None)
        return value

    def clear(self) -> None:
        with self._guard:
            self._values.clear()
            self._state.clear()


views = ViewCache()
