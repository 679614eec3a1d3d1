"""Members and their identities: merging two members, and undoing it.

Activities point at identities, never at members, and merging only changes
which member an identity belongs to.  No identity, activity or member row is
ever deleted, so no merge can lose data, and every identity can always go back
to the member it was created with (its home member).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from parvis.store import Store
from parvis.store.schema import identities, member_events, members


class MemberError(Exception):
    """A member or identity reference that does not resolve, or a merge that makes no sense."""


@dataclass(frozen=True)
class MoveReport:
    member_id: str
    moved_identities: tuple[str, ...]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _active_member(connection: Connection, member_id: str) -> str:
    seen: set[str] = set()
    current = member_id
    while True:
        merged_into = connection.execute(select(members.c.merged_into).where(members.c.id == current)).first()
        if merged_into is None:
            raise MemberError(f"no member {member_id!r}")
        if merged_into[0] is None:
            return current
        if current in seen:
            raise MemberError(f"member {member_id!r} is in a merge cycle")
        seen.add(current)
        current = merged_into[0]


def resolve_member(connection: Connection, reference: str) -> str:
    """The active member behind a member id or an identity id."""
    identity = connection.execute(select(identities.c.member_id).where(identities.c.id == reference)).first()
    if identity is not None:
        return _active_member(connection, identity[0])
    return _active_member(connection, reference)


def _move(connection: Connection, identity_ids: list[str], to_member: str, action: str, at: datetime) -> None:
    rows = connection.execute(
        select(identities.c.id, identities.c.member_id).where(identities.c.id.in_(identity_ids))
    ).all()
    for identity_id, from_member in rows:
        if from_member == to_member:
            continue
        connection.execute(update(identities).where(identities.c.id == identity_id).values(member_id=to_member))
        connection.execute(
            member_events.insert().values(
                at=at, action=action, identity_id=identity_id, from_member_id=from_member, to_member_id=to_member
            )
        )


def merge(store: Store, keep: str, absorb: str) -> MoveReport:
    """Move every identity of member ``absorb`` to member ``keep`` (ids of members or identities)."""
    with store.engine.begin() as connection:
        target = resolve_member(connection, keep)
        other = resolve_member(connection, absorb)
        if target == other:
            raise MemberError(f"{keep!r} and {absorb!r} are already the same member ({target})")
        moved = list(
            connection.execute(select(identities.c.id).where(identities.c.member_id == other).order_by(identities.c.id))
            .scalars()
            .all()
        )
        _move(connection, moved, target, "merge", _now())
        connection.execute(update(members).where(members.c.id == other).values(merged_into=target))
    return MoveReport(target, tuple(moved))


def unmerge(store: Store, reference: str) -> list[MoveReport]:
    """Send identities back to their home members.

    ``reference`` is an identity merged into another member (it goes home), or a
    member id or one of its home identities (every identity of that member that is
    not at home goes home).
    """
    at = _now()
    reports: list[MoveReport] = []
    with store.engine.begin() as connection:
        identity = connection.execute(
            select(identities.c.member_id, identities.c.home_member_id).where(identities.c.id == reference)
        ).first()
        if identity is not None and identity.member_id != identity.home_member_id:
            chosen = [reference]
        else:
            member_id = resolve_member(connection, reference)
            chosen = list(
                connection.execute(
                    select(identities.c.id)
                    .where(identities.c.member_id == member_id, identities.c.home_member_id != member_id)
                    .order_by(identities.c.id)
                )
                .scalars()
                .all()
            )
            if not chosen:
                raise MemberError(f"member {member_id!r} has no merged identities to split off")
        for identity_id in chosen:
            home, current = connection.execute(
                select(identities.c.home_member_id, identities.c.member_id).where(identities.c.id == identity_id)
            ).one()
            if home == current:
                continue
            _move(connection, [identity_id], home, "unmerge", at)
            connection.execute(update(members).where(members.c.id == home).values(merged_into=None))
            reports.append(MoveReport(home, (identity_id,)))
    return reports


def member_identities(store: Store, reference: str) -> tuple[str, list[str]]:
    with store.engine.connect() as connection:
        member_id = resolve_member(connection, reference)
        ids = connection.execute(
            select(identities.c.id).where(identities.c.member_id == member_id).order_by(identities.c.id)
        ).scalars()
        return member_id, list(ids)
