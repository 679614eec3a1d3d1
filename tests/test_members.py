"""Merging and unmerging members never loses an identity or an activity."""

from __future__ import annotations

import contextlib
import random
from collections import Counter

import pytest
from sqlalchemy import select

from parvis.ingest import ingest
from parvis.members import MemberError, member_identities, merge, resolve_member, unmerge
from parvis.records import Activity, Identity, Record
from parvis.stats import store_stats
from parvis.store import Store
from parvis.store.schema import activities, identities, members
from tests.dbdump import snapshot
from tests.test_ingest import ListConnector, at


def community(people: int = 6) -> list[Record]:
    records: list[Record] = []
    for number in range(people):
        records.append(Identity(f"p{number}", f"person{number}", f"Person {number}"))
        records.extend(
            Activity(f"a{number}-{index}", "message", at(number * 10 + index), author=f"p{number}")
            for index in range(number + 1)
        )
    return records


def activity_count_per_member(store: Store) -> Counter[str]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(identities.c.member_id).join(activities, activities.c.identity_id == identities.c.id)
        ).scalars()
        return Counter(rows)


def test_merge_then_unmerge_restores_everything(store: Store) -> None:
    ingest(store, ListConnector(community()))
    original = snapshot(store)
    report = merge(store, "demo:p1", "demo:p2")
    assert report.moved_identities == ("demo:p2",)
    assert member_identities(store, "demo:p2") == ("member:demo:p1", ["demo:p1", "demo:p2"])
    assert activity_count_per_member(store)["member:demo:p1"] == 2 + 3
    assert store_stats(store)["total"]["members"] == 5
    merge(store, "demo:p0", "demo:p1")  # p1 now carries p2 along
    assert member_identities(store, "demo:p2")[1] == ["demo:p0", "demo:p1", "demo:p2"]
    assert activity_count_per_member(store)["member:demo:p0"] == 1 + 2 + 3
    unmerge(store, "demo:p0")
    assert snapshot(store) == original


def test_unmerge_one_identity_keeps_the_rest_merged(store: Store) -> None:
    ingest(store, ListConnector(community()))
    merge(store, "demo:p3", "demo:p4")
    merge(store, "demo:p3", "demo:p5")
    unmerge(store, "demo:p4")
    assert member_identities(store, "demo:p3")[1] == ["demo:p3", "demo:p5"]
    assert member_identities(store, "demo:p4")[1] == ["demo:p4"]
    assert store_stats(store)["total"]["members"] == 5


def test_reimport_does_not_undo_a_merge(store: Store) -> None:
    ingest(store, ListConnector(community()))
    merge(store, "demo:p1", "demo:p2")
    changed = [
        Identity("p2", "person2", "Person Two, renamed") if getattr(record, "native_id", None) == "p2" else record
        for record in community()
    ]
    summary = ingest(store, ListConnector(changed))
    assert summary.identities.updated == 1
    assert member_identities(store, "demo:p2")[0] == "member:demo:p1"


def test_bad_references_are_refused(store: Store) -> None:
    ingest(store, ListConnector(community(2)))
    with pytest.raises(MemberError, match="no member"):
        merge(store, "demo:p0", "demo:nobody")
    merge(store, "demo:p0", "demo:p1")
    with pytest.raises(MemberError, match="already the same member"):
        merge(store, "demo:p1", "demo:p0")


@pytest.mark.parametrize("seed", range(4))
def test_random_merges_and_unmerges_lose_nothing(store: Store, seed: int) -> None:
    people = 8
    ingest(store, ListConnector(community(people)))
    original = snapshot(store)
    total_activities = sum(activity_count_per_member(store).values())
    chooser = random.Random(seed)
    references = [f"demo:p{number}" for number in range(people)]
    for _ in range(25):
        if chooser.random() < 0.6:
            keep, absorb = chooser.sample(references, 2)
            with contextlib.suppress(MemberError):  # already the same member
                merge(store, keep, absorb)
        else:
            with contextlib.suppress(MemberError):  # nothing merged into that member
                unmerge(store, chooser.choice(references))
        with store.engine.connect() as connection:
            active = set(connection.execute(select(members.c.id).where(members.c.merged_into.is_(None))).scalars())
            owners = connection.execute(select(identities.c.member_id)).scalars().all()
        assert len(owners) == people
        assert set(owners) <= active
        assert sum(activity_count_per_member(store).values()) == total_activities
        with store.engine.connect() as connection:
            assert {resolve_member(connection, reference) for reference in references} == set(owners)
    for reference in references:
        if len(member_identities(store, reference)[1]) > 1:
            unmerge(store, reference)
    assert snapshot(store) == original
