"""Metrics on a tiny hand-built community (tests/test_metrics_community.py), on SQLite and PostgreSQL.

Every expected row below was worked out by hand from the community's rows, not by running the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd
import pytest

from parvis.metrics import METRICS, MetricsError, compute, segment_members, unanswered_questions
from parvis.metrics.segments import SegmentRules, segment_counts
from parvis.store import Store, open_store
from tests import test_metrics_community as community

UNTIL = date(2024, 3, 31)
J, F, M = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


@pytest.fixture
def tiny(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    community.build(store)
    yield store
    store.close()


def rows(store: Store, name: str, **options: Any) -> list[tuple[Any, ...]]:
    options.setdefault("until", UNTIL)
    frame = compute(store, [name], **options)[name].frame
    return [
        tuple(None if isinstance(v, float) and pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)
    ]


def approx(found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in found]


def test_member_counts(tiny: Store) -> None:
    # forum: alice, bob, carol in January (the bot and dave's badge do not count), carol in February,
    # alice and carol in March.  list: erin, frank and alice (merged into her forum member) in January.
    assert rows(tiny, "active_members:source:month") == [
        ("forum", J, 3),
        ("forum", F, 1),
        ("forum", M, 2),
        ("list", J, 3),
        ("list", F, 1),
    ]
    assert rows(tiny, "new_members:source:month") == [("forum", J, 3), ("list", J, 3)]
    assert rows(tiny, "returning_members:source:month") == [("forum", F, 1), ("forum", M, 2), ("list", F, 1)]
    assert rows(tiny, "active_members:source:week", source="forum", since=date(2024, 2, 1)) == [
        ("forum", date(2024, 2, 5), 1),
        ("forum", date(2024, 3, 4), 2),
    ]


def test_dau_mau_and_stickiness(tiny: Store) -> None:
    daily = approx(rows(tiny, "dau_wau_mau:source:day", source="forum"))
    assert daily == [
        ("forum", date(2024, 1, 1), 2, 2, 2, 1.0),
        ("forum", date(2024, 1, 2), 1, 2, 2, 0.5),
        ("forum", date(2024, 1, 3), 1, 2, 2, 0.5),
        ("forum", date(2024, 1, 4), 1, 3, 3, round(1 / 3, 6)),
        ("forum", date(2024, 2, 10), 1, 1, 1, 1.0),
        ("forum", date(2024, 3, 5), 2, 2, 2, 1.0),
    ]
    assert approx(rows(tiny, "stickiness:source:month", source="forum")) == [
        ("forum", J, round((1 + 0.5 + 0.5 + 1 / 3) / 4, 6), 4),
        ("forum", F, 1.0, 1),
        ("forum", M, 1.0, 1),
    ]


def test_retention_cohorts(tiny: Store) -> None:
    assert approx(rows(tiny, "retention:cohort:month", source="forum")) == [
        ("forum", J, 0, 3, 3, 1.0),
        ("forum", J, 1, 3, 1, round(1 / 3, 6)),
        ("forum", J, 2, 3, 2, round(2 / 3, 6)),
    ]


def test_conversations_and_activities(tiny: Store) -> None:
    assert rows(tiny, "conversations_started:channel:month") == [
        ("forum", "forum:tag:x", J, 2),
        ("forum", "forum:tag:x", F, 1),
        ("forum", "forum:tag:x", M, 1),
        ("list", "list:list:l", J, 1),
        ("list", "list:list:l", F, 1),
    ]
    assert rows(tiny, "activities:kind:month", source="forum", since=F) == [
        ("forum", "answer", M, 1),
        ("forum", "badge", M, 1),
        ("forum", "question", F, 1),
        ("forum", "question", M, 1),
        ("forum", "vote", F, 1),
    ]
    # dave registered and never posted; the bot is not a member; the list knows no registrations.
    assert rows(tiny, "contributor_ratio:source:all") == [("forum", 4, 3, 0.75)]


def test_responsiveness(tiny: Store) -> None:
    # q1 answered by bob after 2 h; q2's first response by someone else is carol's after 24 h (bob's own
    # comment and the bot's do not count); q3 got only an anonymous vote; q4 answered after 6 h.
    assert approx(rows(tiny, "response_rate:source:month")) == [
        ("forum", J, 2, 2, 1.0),
        ("forum", F, 1, 0, 0.0),
        ("forum", M, 1, 1, 1.0),
        ("list", J, 1, 1, 1.0),
        ("list", F, 1, 0, 0.0),
    ]
    assert approx(rows(tiny, "first_response_time:source:month")) == [
        ("forum", J, 2, 13.0, 21.8),
        ("forum", M, 1, 6.0, 6.0),
        ("list", J, 1, 12.0, 12.0),
    ]
    # questions: 4 on the forum; on the list m1, m2 and r1 (labelled a question by the enricher,
    # answered by frank).  Unanswered: q3 and m2 (erin's self-reply does not count).
    assert rows(tiny, "unanswered_questions:source:all") == [("forum", 4, 1), ("list", 3, 1)]
    listed = unanswered_questions(tiny, as_of=UNTIL)
    assert list(listed["activity_id"]) == ["forum:q3", "list:m2"]
    assert list(listed.columns) == [
        "activity_id",
        "conversation_id",
        "title",
        "url",
        "created_at",
        "age",
        "source",
        "channel",
    ]
    assert listed["age"][0] == pd.Timestamp("2024-04-01") - pd.Timestamp("2024-02-10 08:00")
    assert list(unanswered_questions(tiny, source="list", limit=1, as_of=UNTIL)["activity_id"]) == ["list:m2"]
    # q1 accepted on 2024-01-02 00:00, 14 h after it was asked; the others have no accept.
    assert rows(tiny, "accept_time:source:month") == [
        ("forum", J, 2, 1, 14.0, 14.0),
        ("forum", F, 1, 0, None, None),
        ("forum", M, 1, 0, None, None),
    ]


def test_concentration_and_engagement(tiny: Store) -> None:
    # forum: alice 4, bob 3, carol 3 (total 10): each starts before 80% -> all core.
    # list: erin 3, alice 1, frank 1 (total 5): erin from 0, alice from 3 (< 4), frank from 4 (< 4.75).
    assert rows(tiny, "contributor_tiers:source:all") == [
        ("forum", "core", 3, 10),
        ("list", "core", 2, 4),
        ("list", "regular", 1, 1),
    ]
    assert rows(tiny, "top_contributors:source:all", source="forum") == [
        ("forum", 1, "member:forum:u1", "alice", 4),
        ("forum", 2, "member:forum:u2", "bob", 3),
        ("forum", 3, "member:forum:u3", "carol", 3),
    ]
    engagement = {(s, m): (n, round(love, 6), reach) for s, m, n, love, reach in rows(tiny, "engagement:member:all")}
    # carol: comment in January (1 x 0.9^2), question in February (2 x 0.9), answer in March (3); she
    # replied to bob (c4) and alice (a3).  alice on the forum: questions 2 + 2, comment 1, accept 1;
    # she exchanged replies with bob (a1, c1, acc1) and carol (a3).
    assert engagement[("forum", "member:forum:u3")] == (3, round(0.81 + 1.8 + 3, 6), 2)
    assert engagement[("forum", "member:forum:u1")] == (4, round((2 + 1 + 1) * 0.81 + 2, 6), 2)
    assert engagement[("list", "member:forum:u1")] == (1, round(2 * 0.81, 6), 2)
    assert engagement[("list", "member:list:addr:e")] == (3, round(2 * 0.81 + 4 * 0.9, 6), 1)


def test_onboarding_funnel(tiny: Store) -> None:
    # forum newcomers: alice (q1 answered after 2 h; c1 within 30 days), bob (a1: alice's comment 1 h
    # later; q2 within 30 days), carol (c4: nobody else after it; next post 37 days later).
    assert rows(tiny, "onboarding_funnel:cohort:month", source="forum") == [("forum", J, 3, 2, 1.5, 2, 0)]


def test_enrichment_metrics(tiny: Store) -> None:
    assert approx(rows(tiny, "sentiment:channel:month")) == [
        ("list", "list:list:l", J, "negative", 1, round(1 / 3, 6)),
        ("list", "list:list:l", J, "positive", 2, round(2 / 3, 6)),
    ]
    assert rows(tiny, "toxicity_rate:channel:month") == [("list", "list:list:l", J, 2, 1, 0.5)]


def test_segments(tiny: Store) -> None:
    def segments(as_of: date, rules: SegmentRules | None = None) -> dict[str, list[str]]:
        members = segment_members(tiny, as_of=as_of, source="forum", rules=rules)
        return {row.member_id: row.segments for row in members.sort_values("member_id").itertuples()}

    # On 10 March: everyone posted in the last year and all three are core; bob's answer was accepted
    # (champion); dave registered and never posted (silent); the bot is nobody's member.
    assert segments(date(2024, 3, 10)) == {
        "member:forum:u1": ["core"],
        "member:forum:u2": ["core", "champion"],
        "member:forum:u3": ["core"],
        "member:forum:u4": ["silent"],
    }
    # On 10 January all three are newcomers; alice 3 and bob 3 of the 7 activities make the core (80%),
    # carol's one is "regular".
    assert segments(date(2024, 1, 10)) == {
        "member:forum:u1": ["newcomer", "core"],
        "member:forum:u2": ["newcomer", "core", "champion"],
        "member:forum:u3": ["newcomer"],
        "member:forum:u4": ["silent"],
    }
    # Tighter rules: 3 activities before a 30-day silence make alice and bob "at risk" on 5 February;
    # on 10 March alice (63 days without activity before q4) and carol (37 days before q3) are back
    # after 30 days or more, and all three first posted more than 60 days earlier and were active since.
    rules = SegmentRules(regular_activities=3, silence_days=30, gap_days=30, veteran_days=60)
    early = segments(date(2024, 2, 5), rules)
    assert [member for member, found in early.items() if "at_risk" in found] == ["member:forum:u1", "member:forum:u2"]
    late = segments(date(2024, 3, 10), rules)
    assert [member for member, found in late.items() if "returning" in found] == ["member:forum:u1", "member:forum:u3"]
    assert [member for member, found in late.items() if "veteran" in found] == [
        "member:forum:u1",
        "member:forum:u2",
        "member:forum:u3",
    ]
    members = segment_members(tiny, "silent", as_of=date(2024, 3, 10))
    assert list(members["member_id"]) == ["member:forum:u4"]
    assert list(members.columns) == [
        "member_id",
        "display_name",
        "segments",
        "first_activity",
        "last_activity",
        "activities",
        "love",
        "reach",
    ]
    counts = segment_counts(tiny, periods=[date(2024, 1, 10), date(2024, 3, 10)], source="forum")
    assert counts[counts.segment == "newcomer"]["members"].tolist() == [3, 0]


def test_errors_are_clear(tiny: Store) -> None:
    with pytest.raises(MetricsError, match="unknown metric"):
        compute(tiny, ["nope"])
    with pytest.raises(MetricsError, match="unknown grain"):
        compute(tiny, grain="year")
    with pytest.raises(MetricsError, match="unknown segment"):
        segment_members(tiny, "nobody")


def test_every_metric_has_a_definition() -> None:
    assert METRICS
    for name, metric in METRICS.items():
        assert metric.name == name and len(name.split(":")) == 3
        assert len(metric.definition) > 40, name


def test_docs_are_generated_from_the_definitions() -> None:
    from pathlib import Path

    from parvis.metrics.docs import render

    written = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    assert written == render(), "docs/metrics.md is stale: python -m parvis.metrics.docs > docs/metrics.md"
