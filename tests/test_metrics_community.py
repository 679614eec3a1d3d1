"""A tiny hand-built community for the metrics tests: every expected figure is worked out by hand
in tests/test_metrics.py from the rows below.

forum (a Q&A site; it knows its registered users): alice u1, bob u2, carol u3, dave u4 (registered,
never posts), helper-bot u5 (a bot).  list (a help mailing list): erin, frank, and alice's address,
merged into alice's forum member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, Table, insert

from parvis.store import Store
from parvis.store.schema import activities, channels, conversations, identities, members, sources


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (id, kind, identity, conversation, parent, created_at)
FORUM = [
    ("forum:q1", "question", "forum:u1", "forum:q1", None, "2024-01-01 10:00"),
    ("forum:a1", "answer", "forum:u2", "forum:q1", "forum:q1", "2024-01-01 12:00"),
    ("forum:c1", "comment", "forum:u1", "forum:q1", "forum:a1", "2024-01-01 13:00"),
    ("forum:acc1", "accept", "forum:u1", "forum:q1", "forum:a1", "2024-01-02 00:00"),
    ("forum:q2", "question", "forum:u2", "forum:q2", None, "2024-01-03 09:00"),
    ("forum:c2", "comment", "forum:u2", "forum:q2", "forum:q2", "2024-01-03 10:00"),
    ("forum:c3", "comment", "forum:u5", "forum:q2", "forum:q2", "2024-01-03 11:00"),
    ("forum:c4", "comment", "forum:u3", "forum:q2", "forum:q2", "2024-01-04 09:00"),
    ("forum:q3", "question", "forum:u3", "forum:q3", None, "2024-02-10 08:00"),
    ("forum:v1", "vote", None, "forum:q3", "forum:q3", "2024-02-10 09:00"),
    ("forum:q4", "question", "forum:u1", "forum:q4", None, "2024-03-05 10:00"),
    ("forum:a3", "answer", "forum:u3", "forum:q4", "forum:q4", "2024-03-05 16:00"),
    ("forum:b1", "badge", "forum:u4", None, None, "2024-03-06 00:00"),
]
LIST = [
    ("list:m1", "message", "list:addr:e", "list:m1", None, "2024-01-15 08:00"),
    ("list:r1", "reply", "list:addr:a", "list:m1", "list:m1", "2024-01-15 20:00"),
    ("list:r3", "reply", "list:addr:f", "list:m1", "list:r1", "2024-01-16 08:00"),
    ("list:m2", "message", "list:addr:e", "list:m2", None, "2024-02-20 08:00"),
    ("list:r2", "reply", "list:addr:e", "list:m2", "list:m2", "2024-02-20 09:00"),
]
# (activity, enricher, label, score)
ENRICHMENTS = [
    ("list:m1", "sentiment", "positive", 0.9),
    ("list:r1", "sentiment", "negative", 0.8),
    ("list:r3", "sentiment", "positive", 0.7),
    ("list:r1", "toxicity", "toxic", 0.9),
    ("list:m1", "toxicity", "ok", 0.1),
    ("list:r1", "question", "question", 0.8),
]


def build(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            insert(sources),
            [
                {"id": "forum", "platform": "stackexchange", "name": "forum", "extras": {}},
                {"id": "list", "platform": "mbox", "name": "list", "extras": {}},
            ],
        )
        connection.execute(
            insert(channels),
            [
                {
                    "id": "forum:tag:x",
                    "source_id": "forum",
                    "native_id": "tag:x",
                    "name": "x",
                    "kind": "tag",
                    "extras": {},
                    "content_hash": "-",
                },
                {
                    "id": "list:list:l",
                    "source_id": "list",
                    "native_id": "list:l",
                    "name": "l",
                    "kind": "list",
                    "extras": {},
                    "content_hash": "-",
                },
            ],
        )
        people: list[tuple[str, str, bool, str | None]] = [
            ("forum:u1", "alice", False, "2023-12-01 00:00"),
            ("forum:u2", "bob", False, "2023-12-02 00:00"),
            ("forum:u3", "carol", False, "2023-12-03 00:00"),
            ("forum:u4", "dave", False, "2023-12-04 00:00"),
            ("forum:u5", "helper-bot", True, "2023-12-05 00:00"),
            ("list:addr:e", "erin", False, None),
            ("list:addr:f", "frank", False, None),
            ("list:addr:a", "alice", False, None),
        ]
        connection.execute(
            insert(members),
            [
                {"id": f"member:{identity}", "display_name": name, "merged_into": None}
                for identity, name, _, _ in people
            ],
        )
        connection.execute(
            members.update().where(members.c.id == "member:list:addr:a").values(merged_into="member:forum:u1")
        )
        rows: list[dict[str, Any]] = []
        for identity, name, bot, created in people:
            source, _, native = identity.partition(":")
            rows.append(
                {
                    "id": identity,
                    "source_id": source,
                    "native_id": native,
                    "member_id": "member:forum:u1" if identity == "list:addr:a" else f"member:{identity}",
                    "home_member_id": f"member:{identity}",
                    "handle": name,
                    "display_name": name,
                    "created_at": _at(created) if created else None,
                    "is_bot": bot,
                    "extras": {},
                    "content_hash": "-",
                }
            )
        connection.execute(insert(identities), rows)
        roots = [row for row in FORUM + LIST if row[3] == row[0]]
        connection.execute(
            insert(conversations),
            [
                {
                    "id": root,
                    "source_id": root.split(":")[0],
                    "native_id": root.split(":")[1],
                    "channel_id": "forum:tag:x" if root.startswith("forum") else "list:list:l",
                    "title": f"title of {root}",
                    "created_at": _at(at),
                    "root_activity_id": root,
                    "thread_key": None,
                }
                for root, _, _, _, _, at in roots
            ],
        )
        acts = []
        for activity, kind, identity, conversation, parent, at in FORUM + LIST:
            source, _, native = activity.partition(":")
            acts.append(
                {
                    "id": activity,
                    "source_id": source,
                    "native_id": native,
                    "kind": kind,
                    "identity_id": identity,
                    "channel_id": None if kind == "badge" else ("forum:tag:x" if source == "forum" else "list:list:l"),
                    "conversation_id": conversation,
                    "parent_id": parent,
                    "created_at": _at(at),
                    "edited_at": None,
                    "title": f"title of {activity}" if conversation == activity else None,
                    "text_raw": None,
                    "text_plain": None,
                    "text_format": "text",
                    "url": f"https://example.org/{native}",
                    "extras": {},
                    "content_hash": "-",
                }
            )
        connection.execute(insert(activities), acts)
        enrichments = Table("enrichments", MetaData(), autoload_with=connection)
        connection.execute(
            insert(enrichments),
            [
                {
                    "activity_id": activity,
                    "enricher": enricher,
                    "version": "1",
                    "label": label,
                    "score": score,
                    "extras": {},
                    "content_hash": "-",
                }
                for activity, enricher, label, score in ENRICHMENTS
            ],
        )
