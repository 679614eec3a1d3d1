"""A small in-process cache of computed views, keyed by the store's state.

Metrics over millions of activities take seconds; pages must answer in milliseconds.  A value is
kept until the store's state key changes (an import run, a merge, an inbox change: see
:func:`parvis.web.queries.store_state`).  The state key itself is re-read every ``STATE_TTL``
seconds, so changes made by another process (an import running beside the server) show up within
that delay.  Enrichments written by ``parvis enrich`` leave no import run behind: a value is also
refreshed once it is ``TTL`` seconds old.  That refresh runs in a background thread while the aged
value keeps being served, so at millions of members no visitor waits minutes for it; the values it
reads from the cache are refreshed first if they have aged too.  A new store state, on the other
hand, is waited for.  Concurrent requests for the same missing value wait for
one computation instead of all running it.
"""

from __future__ import annotations

import logging
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
logger = logging.getLogger(__name__)
_thread = threading.local()


class ViewCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._refreshing: set[Hashable] = set()
        self._guard = threading.Lock()
        self._state: dict[str, tuple[float, tuple[object, ...]]] = {}

    def state(self, store: Store) -> tuple[object, ...]:
        """The store's state key, itself read at most every ``STATE_TTL`` seconds."""
        url = _url(store)
        known = self._known_state(url)
        if known is not None:
            return known
        state = store_state(store)
        with self._guard:
            self._state[url] = (time.monotonic(), state)
        return state

    def _known_state(self, url: str) -> tuple[object, ...] | None:
        with self._guard:
            known = self._state.get(url)
        if known is not None and time.monotonic() - known[0] < STATE_TTL:
            return known[1]
        return None

    def peek(self, store: Store, key: Hashable) -> Any | None:
        """The value if it is at hand without touching the store (state key read recently, value not
        aged out), else None.  Never blocks, so an event loop can call it."""
        url = _url(store)
        state = self._known_state(url)
        if state is None:
            return None
        full = (url, state, key)
        with self._guard:
            found = self._values.get(full)
            if found is None or time.monotonic() - found[0] >= TTL:
                return None
            self._values.move_to_end(full)
            return found[1]

    def get(self, store: Store, key: Hashable, compute: Callable[[], T]) -> T:
        full = (_url(store), self.state(store), key)
        # A background refresh must not build its value from aged ones: there, aged means missing.
        refreshing = getattr(_thread, "refreshing", False)
        with self._guard:
            found = self._values.get(full)
            if found is not None:
                aged = time.monotonic() - found[0] >= TTL
                if not (aged and refreshing):
                    self._values.move_to_end(full)
                    if aged and full not in self._refreshing:
                        self._refreshing.add(full)
                        threading.Thread(target=self._refresh, args=(full, compute), daemon=True).start()
                    return found[1]  # type: ignore[no-any-return]
            lock = self._locks.setdefault(full, threading.Lock())
        with lock:
            with self._guard:
                found = self._values.get(full)
                if found is not None and not (refreshing and time.monotonic() - found[0] >= TTL):
                    return found[1]  # type: ignore[no-any-return]
            value = compute()
            self._keep(full, value)
            with self._guard:
                self._locks.pop(full, None)
        return value

    def _refresh(self, full: Hashable, compute: Callable[[], Any]) -> None:
        _thread.refreshing = True
        try:
            self._keep(full, compute())
        # The aged value stays in use; the next request after TTL tries again.
        except Exception as problem:
            logger.warning("refreshing a cached view failed: %s", problem)
        finally:
            with self._guard:
                self._refreshing.discard(full)

    def _keep(self, full: Hashable, value: Any) -> None:
        with self._guard:
            self._values[full] = (time.monotonic(), value)
            self._values.move_to_end(full)
            while len(self._values) > self.max_entries:
                old, _ = self._values.popitem(last=False)
                self._locks.pop(old, None)

    def clear(self) -> None:
        with self._guard:
            self._values.clear()
            self._state.clear()


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=True)


views = ViewCache()
"""Metric frames, member lists and rendered page content (shared by every user)."""
pages = ViewCache(max_entries=512)
"""Finished pages, per user session (see :mod:`parvis.web.ready`); apart from ``views`` so that
many sessions never push the expensive member frames out."""
