"""The moderation rule language: validation errors with line and field, and evaluation over a real store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from parvis.connectors.matrix import MatrixBatch, RoomInfo
from parvis.ingest import ingest
from parvis.store import Store
from parvis.workflows.moderation import Moderator, audit_entries, decide, queue
from parvis.workflows.moderation_rules import RulesError, parse_rules
from tests.cli_run import parvis


def problems(source: str) -> list[tuple[int, str, str]]:
    with pytest.raises(RulesError) as raised:
        parse_rules(source, "rules.yaml")
    return [(problem.line, problem.path, problem.message) for problem in raised.value.problems]


def test_broken_yaml_names_its_line() -> None:
    found = problems("rules:\n  - id: a\n    when: {text: {words: [x]}\n    actions: [flag]\n")
    assert len(found) == 1
    line, path, message = found[0]
    assert (line, path) == (4, "yaml")
    assert "column" in message


def test_each_problem_names_line_and_field() -> None:
    source = """\
rules:
  - id: links
    when:
      links: {domains: [bit.ly]}
      text:
        regex: "(unclosed"
    actions: [flag, explode]
  - id: links
    when:
      toxicity: {at_least: 1.5}
      author: {segment: veteran, age: 3}
    actions:
      - warn: "Hello {nickname}"
  - when: {text: {words: [x]}}
    actions: [flag]
"""
    assert problems(source) == [
        (6, "rules[0].when.text.regex", "invalid regular expression: missing ), unterminated subpattern at position 0"),
        (7, "rules[0].actions[1]", "unknown action 'explode'; expected one of: flag, hide, reply, warn, notify"),
        (8, "rules[1].id", "'links' is already the id of the rule at line 2"),
        (10, "rules[1].when.toxicity.at_least", "expected a number between 0 and 1"),
        (11, "rules[1].when.author.age", "unknown field; expected one of: account_age_days, activities, segment"),
        (11, "rules[1].when.author.segment", "unknown segment 'veteran'; expected one of: newcomer, regular"),
        (
            13,
            "rules[1].actions[0].warn",
            "unknown placeholder {nickname}; allowed: {author}, {channel}, {reason}, {rule}, {text}",
        ),
        (14, "rules[2].id", "missing"),
    ]


def test_cli_reports_errors_without_traceback(tmp_path: Path, sqlite_url: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: a\n    when: {rate: {per_minute: {over: many}}}\n    actions: [flag]\n")
    result = parvis("moderate", "test", str(rules), db=sqlite_url)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{rules}:3: rules[0].when.rate.per_minute.over: expected a number ≥ 0"
    assert "Traceback" not in result.stderr


def _event(number: int, sender: str, body: str, at: datetime) -> dict[str, object]:
    return {
        "type": "m.room.message",
        "event_id": f"$e{number}",
        "sender": sender,
        "origin_server_ts": int(at.timestamp() * 1000),
        "content": {"msgtype": "m.text", "body": body},
    }


RULES = """\
rules:
  - id: spam-links
    reason: Link shorteners from newcomers
    when:
      links: {domains: [bit.ly]}
      author: {segment: newcomer}
    actions: [flag]
  - id: flood
    reason: Flooding
    when:
      rate: {repeated: {at_least: 3, within_minutes: 5}}
    actions: [flag, {notify: "{author} repeats: {text}"}]
  - id: toxic
    reason: Toxic
    when:
      toxicity: {at_least: 0.9}
    actions: [hide]
  - id: case
    reason: Shouting the name
    when:
      text: {contains: [PARVIS], case_sensitive: true}
    actions: [flag]
"""


def test_rules_over_a_store(store: Store, tmp_path: Path) -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    regular = "@old:example.org"
    newcomer = "@new:example.org"
    events = [_event(n, regular, f"chat {n}", start + timedelta(days=n)) for n in range(40)]
    later = start + timedelta(days=41)
    events += [
        _event(100, regular, "see https://bit.ly/x", later),
        _event(101, newcomer, "cheap stuff https://www.bit.ly/y", later + timedelta(seconds=1)),
        _event(102, newcomer, "BUY  NOW", later + timedelta(seconds=2)),
        _event(103, newcomer, "buy now", later + timedelta(seconds=3)),
        _event(104, newcomer, "Buy now", later + timedelta(seconds=4)),
        _event(105, regular, "parvis is nice; PARVIS!", later + timedelta(seconds=5)),
        _event(106, regular, "you are awful", later + timedelta(seconds=6)),
    ]
    ingest(store, MatrixBatch("m", [RoomInfo("!r:example.org", "Room")], [("!r:example.org", e) for e in events]), "m")
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO enrichments (activity_id, enricher, version, label, score, extras, content_hash) "
                "VALUES ('m:$e106', 'toxicity', '1', 'toxic', 0.97, '{}', 'x')"
            )
        )
    moderator = Moderator(store, parse_rules(RULES))
    found = [(match.rule.id, match.subject.activity_id, match.why) for match in moderator.dry_run()]
    assert found == [
        ("spam-links", "m:$e101", ("link to bit.ly", "author is a newcomer")),
        ("flood", "m:$e104", ("same text 3 times in 5 min (at least 3)",)),
        ("case", "m:$e105", ("text 'PARVIS'",)),
        ("toxic", "m:$e106", ("toxicity 0.97 (at least 0.9)",)),
    ]
    # Enforcing without a platform connection: flags go to the queue, the rest is logged as skipped.
    matches = moderator.evaluate(["m:$e101", "m:$e104", "m:$e106"])
    outcomes = asyncio.run(moderator.enforce(matches, None))
    assert [(o.match.rule.id, o.done, o.failed) for o in outcomes] == [
        ("spam-links", ["flag"], []),
        ("flood", ["flag"], ["notify"]),
        ("toxic", [], ["hide"]),
    ]
    assert asyncio.run(moderator.enforce(matches, None)) == []  # once per activity and rule
    pending = queue(store)
    assert [(item.activity_id, item.rule, item.state) for item in pending] == [
        ("m:$e101", "spam-links", "pending"),
        ("m:$e104", "flood", "pending"),
    ]
    decide(store, pending[0].id, "remove", "camille", "spam")
    assert [item.activity_id for item in queue(store)] == ["m:$e104"]
    log = audit_entries(store)
    assert [(entry.actor, entry.action, entry.rule) for entry in log] == [
        ("rule:spam-links", "flag", "spam-links"),
        ("rule:flood", "flag", "flood"),
        ("rule:flood", "notify", "flood"),
        ("rule:toxic", "hide", "toxic"),
        ("camille", "remove", "spam-links"),
    ]
    assert log[2].details["text"] == "new repeats: Buy now"
    assert log[0].reason == "Link shorteners from newcomers: link to bit.ly; author is a newcomer"
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert len(audit_entries(store)) == 5
