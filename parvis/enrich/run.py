"""``parvis enrich``: classify the store's activities and keep the results in ``enrichments``.

Incremental: an activity is (re)computed when one of the requested enrichers has no row for it,
a row of another version (the model changed), or a row computed from another text (the
activity's ``content_hash`` changed).  Batches are read by id order (keyset pagination), each
batch's rows are upserted and committed together: stopped at any point, a second run only does
what is left.  On SQLite a rewritten row also moves to the end of the table (a new rowid), so the
metrics snapshot, which reads new rows by rowid, sees the new label.  Only the ``enrichments`` table is written.

The text of an activity is its title (questions, mails) and its plain text, without the lines a
mail quotes (``> ...``).  Activities with neither (votes, joins...) are not enriched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from parvis.enrich.pipeline import TASKS, Classifier, default_classifier
from parvis.store import Store
from parvis.store.schema import activities, enrichments

DEFAULT_BATCH_SIZE = 2000


@dataclass(frozen=True)
class EnrichSummary:
    enriched: int
    rows_written: int
    versions: dict[str, str]

    def one_line(self) -> str:
        versions = ", ".join(f"{task} {version}" for task, version in self.versions.items())
        return f"{self.enriched} activities enriched ({self.rows_written} results written; {versions})"


def activity_text(title: str | None, text: str | None) -> str:
    body = "\n".join(line for line in (text or "").splitlines() if not line.lstrip().startswith(">"))
    return "\n".join(part for part in (title, body) if part)


def _pending_condition(versions: dict[str, str]) -> Any:
    """Activities with text, missing an up-to-date row for one of the enrichers."""
    up_to_date = (
        select(func.count())
        .select_from(enrichments)
        .where(
            enrichments.c.activity_id == activities.c.id,
            enrichments.c.content_hash == activities.c.content_hash,
            or_(*(and_(enrichments.c.enricher == name, enrichments.c.version == v) for name, v in versions.items())),
        )
        .scalar_subquery()
    )
    has_text = or_(activities.c.text_plain.is_not(None), activities.c.title.is_not(None))
    return and_(has_text, up_to_date < len(versions))


def pending_count(store: Store, tasks: Sequence[str] = TASKS, classifier: Classifier | None = None) -> int:
    versions = _versions(classifier or default_classifier(), tasks)
    with store.engine.connect() as connection:
        count = connection.execute(select(func.count()).where(_pending_condition(versions))).scalar_one()
    return int(count)


def _versions(classifier: Classifier, tasks: Sequence[str]) -> dict[str, str]:
    unknown = [task for task in tasks if task not in TASKS]
    if unknown:
        raise ValueError(f"unknown enricher {unknown[0]!r} (known: {', '.join(TASKS)})")
    known = classifier.versions()
    return {task: known[task] for task in tasks}


def _upsert(connection: Connection, rows: list[dict[str, Any]]) -> None:
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = module.insert(enrichments)
    keys = ("activity_id", "enricher")
    changed = {name: statement.excluded[name] for name in rows[0] if name not in keys}
    rewritten = _rowids_of(connection, rows) if module is sqlite else []
    connection.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changed), rows)
    if rewritten:
        _move_to_end(connection, rewritten)


def _rowids_of(connection: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """The SQLite rowids of the stored rows that ``rows`` are about to overwrite."""
    ids = sorted({row["activity_id"] for row in rows})
    tasks = sorted({row["enricher"] for row in rows})
    query = select(text("enrichments.rowid")).where(
        enrichments.c.activity_id.in_(ids), enrichments.c.enricher.in_(tasks)
    )
    return [int(rowid) for rowid in connection.execute(query).scalars()]


def _move_to_end(connection: Connection, rowids: list[int]) -> None:
    """Give rows rewritten in place the next free rowids: the metrics snapshot reads a SQLite store's
    enrichments by rowid watermark, and so sees a relabelled activity as a new row to merge."""
    top = int(connection.exec_driver_sql("SELECT max(rowid) FROM enrichments").scalar_one())
    moves = [{"new": top + number, "old": rowid} for number, rowid in enumerate(rowids, start=1)]
    connection.execute(text("UPDATE enrichments SET rowid = :new WHERE rowid = :old"), moves)


def enrich(
    store: Store,
    *,
    tasks: Sequence[str] = TASKS,
    classifier: Classifier | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> EnrichSummary:
    classifier = classifier or default_classifier()
    versions = _versions(classifier, tasks)
    pending = _pending_condition(versions)
    query = (
        select(activities.c.id, activities.c.title, activities.c.text_plain, activities.c.content_hash)
        .where(pending)
        .order_by(activities.c.id)
        .limit(batch_size)
    )
    enriched = written = 0
    last: str | None = None
    while True:
        with store.engine.begin() as connection:
            page = query if last is None else query.where(activities.c.id > last)
            batch = connection.execute(page).all()
            if not batch:
                break
            texts = [activity_text(row.title, row.text_plain) for row in batch]
            results = classifier.classify(texts, tasks)
            rows = [
                {
                    "activity_id": row.id,
                    "enricher": task,
                    "version": versions[task],
                    "label": results[task][i].label,
                    "score": results[task][i].score,
                    "extras": results[task][i].extras,
                    "content_hash": row.content_hash,
                }
                for i, row in enumerate(batch)
                for task in tasks
            ]
            _upsert(connection, rows)
        last = batch[-1].id
        enriched += len(batch)
        written += len(rows)
        if progress is not None:
            progress(len(batch))
    return EnrichSummary(enriched, written, versions)
