"""The inbox: questions nobody answered yet, across all sources, and their triage state.

An item is an activity (a question, a mail or a chat message opening a conversation) that got no
answer.  Its state lives in ``inbox_states``: no row means *open*; ``handled`` takes it out of the
open list (it comes back with ``open``).  Every change records who made it and when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select

from parvis.store import Store
from parvis.store.schema import activities, inbox_states

State = Literal["open", "handled"]
STATES: tuple[State, ...] = ("open", "handled")


class InboxError(Exception):
    """An unknown activity or state."""


@dataclass(frozen=True)
class ItemState:
    activity_id: str
    state: State
    assignee: str | None
    updated_by: str | None
    updated_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def set_state(store: Store, activity_id: str, state: str, *, by: str, assignee: str | None = None) -> ItemState:
    """Record ``state`` (and the assignee) for an inbox item; ``by`` is the user making the change."""
    if state not in STATES:
        raise InboxError(f"unknown inbox state {state!r} (expected one of {', '.join(STATES)})")
    at = _now()
    with store.engine.begin() as connection:
        exists = connection.execute(select(activities.c.id).where(activities.c.id == activity_id)).first()
        if exists is None:
            raise InboxError(f"no activity {activity_id!r}")
        values = {"state": state, "assignee": assignee or None, "updated_by": by, "updated_at": at}
        updated = connection.execute(
            inbox_states.update().where(inbox_states.c.activity_id == activity_id).values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(inbox_states.insert().values(activity_id=activity_id, **values))
    chosen: State = "handled" if state == "handled" else "open"
    return ItemState(activity_id, chosen, assignee or None, by, at)


def states(store: Store, activity_ids: Iterable[str]) -> dict[str, ItemState]:
    """The recorded state of each of ``activity_ids`` that has one (the others are open)."""
    wanted = list(dict.fromkeys(activity_ids))
    found: dict[str, ItemState] = {}
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = connection.execute(select(inbox_states).where(inbox_states.c.activity_id.in_(chunk)))
            for row in rows:
                found[row.activity_id] = ItemState(
                    row.activity_id, row.state, row.assignee, row.updated_by, row.updated_at
                )
    return found


def handled_ids(store: Store) -> set[str]:
    """Ids of every item marked handled."""
    with store.engine.connect() as connection:
        return set(
            connection.execute(select(inbox_states.c.activity_id).where(inbox_states.c.state == "handled")).scalars()
        )
