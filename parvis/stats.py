"""What the store holds: counts per source and in total."""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, func, select

from parvis.store import Store
from parvis.store.schema import activities, conversations, identities, members, quarantine, sources


def _empty_counts() -> dict[str, Any]:
    return {
        "members": 0,
        "identities": 0,
        "conversations": 0,
        "activities": 0,
        "activities_by_kind": {},
        "quarantined": 0,
    }


def store_stats(store: Store) -> dict[str, Any]:
    """``{"sources": {id: counts}, "total": counts}``; counts as in ``parvis stats --json``.

    A member counts once per source it has an identity on, and once in the total
    (members merged into another count as that one).
    """
    per_source: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as connection:
        for row in connection.execute(select(sources.c.id, sources.c.platform).order_by(sources.c.id)):
            per_source[row.id] = {"platform": row.platform, **_empty_counts()}

        def fill(column: str, statement: Any) -> None:
            for source_id, value in connection.execute(statement):
                per_source[source_id][column] = int(value)

        fill("identities", select(identities.c.source_id, func.count()).group_by(identities.c.source_id))
        fill(
            "members",
            select(identities.c.source_id, func.count(distinct(identities.c.member_id))).group_by(
                identities.c.source_id
            ),
        )
        fill("conversations", select(conversations.c.source_id, func.count()).group_by(conversations.c.source_id))
        fill("quarantined", select(quarantine.c.source_id, func.count()).group_by(quarantine.c.source_id))
        by_kind = select(activities.c.source_id, activities.c.kind, func.count()).group_by(
            activities.c.source_id, activities.c.kind
        )
        for source_id, kind, count in connection.execute(by_kind):
            counts = per_source[source_id]
            counts["activities_by_kind"][kind] = int(count)
            counts["activities"] += int(count)
        total = _empty_counts()
        total["members"] = int(
            connection.execute(
                select(func.count()).select_from(members).where(members.c.merged_into.is_(None))
            ).scalar_one()
        )
    for counts in per_source.values():
        for column in ("identities", "conversations", "activities", "quarantined"):
            total[column] += counts[column]
        for kind, count in counts["activities_by_kind"].items():
            total["activities_by_kind"][kind] = total["activities_by_kind"].get(kind, 0) + count
    for counts in (*per_source.values(), total):
        counts["activities_by_kind"] = dict(sorted(counts["activities_by_kind"].items()))
    return {"sources": per_source, "total": total}
