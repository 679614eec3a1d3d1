"""The snapshot's incremental refresh on a real archive: after each change to the store (a later part of
the archive and its enrichments, an import that finds nothing new, a merge) the refreshed snapshot file
holds the same tables, facts included, and gives the same metrics as a snapshot built from scratch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from parvis.enrich.pipeline import TASKS, Classifier, Result, default_classifier
from parvis.enrich.run import enrich
from parvis.metrics import METRICS, compute_on, engines
from parvis.metrics.base import Scope
from parvis.store import Store, open_store
from tests.cli_run import parvis

UNTIL = date(2026, 11, 1)


def tables(connection: Any) -> dict[str, list[tuple[Any, ...]]]:
    names = (*engines.TABLES, *engines.FACTS)
    return {name: connection.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall() for name in names}


def metrics(on: Any) -> dict[str, pd.DataFrame]:
    found = {}
    for grain in ("week", "month"):
        names = [name for name, metric in METRICS.items() if metric.grain in (grain, "all", "day")]
        scopes = (Scope(grain=grain, until=UNTIL), Scope(grain=grain, since=date(2019, 3, 5), until=date(2021, 6, 30)))
        for number, scope in enumerate(scopes):
            for name, result in compute_on(on, names, scope).items():
                found[f"{name}/{number}"] = result.frame
    return found


def refresh_matches_rebuild(store: Store, expected_how: str) -> dict[str, list[tuple[Any, ...]]]:
    on = engines.duckdb_backend(store)
    assert engines.refresh_log[-1][1] == expected_how
    rebuilt = engines.snapshot_connection(store)
    found = tables(on.con)
    assert found == tables(rebuilt)
    ours, theirs = metrics(on), metrics(engines._ibis(rebuilt))
    assert ours.keys() == theirs.keys()
    for name, frame in ours.items():
        pd.testing.assert_frame_equal(frame, theirs[name], check_exact=False, rtol=1e-12, obj=name)
    rebuilt.close()
    return found


OPPOSITE = {"negative": "positive", "neutral": "negative", "positive": "negative"}


class Contrarian:
    """A sentiment model of another version that gives the opposite of the default's label."""

    def __init__(self, default: Classifier) -> None:
        self.default = default

    def versions(self) -> dict[str, str]:
        return {**self.default.versions(), "sentiment": "contrarian"}

    def classify(
        self, texts: Sequence[str], tasks: Sequence[str] = TASKS, lang: str | None = None
    ) -> dict[str, list[Result]]:
        found = self.default.classify(texts, tasks, lang)
        found["sentiment"] = [Result(OPPOSITE[one.label], one.score) for one in found["sentiment"]]
        return found


def runs(store: Store) -> list[tuple[int, int, str]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql("SELECT added, updated, status FROM import_runs")]


def test_appended_rows_give_the_metrics_of_a_fresh_snapshot(shared_data: Path, sqlite_url: str) -> None:
    archive = sorted((shared_data / "mailinglist_r_package_devel" / "archive").glob("*.txt.gz"))
    early, late = archive[:30], archive[30:]
    assert parvis("import", "mbox", *map(str, early), "--source", "rpkg", db=sqlite_url).returncode == 0
    assert parvis("enrich", db=sqlite_url).returncode == 0
    store = open_store(sqlite_url)
    engines._cache.clear()
    first = refresh_matches_rebuild(store, "built")

    # Later quarters: new threads, replies to threads of earlier quarters, new members; then their labels.
    assert parvis("import", "mbox", *map(str, late), "--source", "rpkg", db=sqlite_url).returncode == 0
    added, updated, status = runs(store)[-1]
    assert added > 1000 and updated == 0 and status == "done"
    assert parvis("enrich", db=sqlite_url).returncode == 0
    second = refresh_matches_rebuild(store, "appended")
    for table in ("activities", "authored", "root_facts", "member_first", "daily_labels"):
        assert len(second[table]) > len(first[table]), table
    touched = {row[3] for row in second["root_facts"]} & {row[3] for row in first["root_facts"]}
    assert touched  # conversations of the first part are still there, some with a later first response
    assert second["root_facts"] != first["root_facts"]

    # An import that finds nothing new: a new import run, no new rows.
    assert parvis("import", "mbox", str(late[-1]), "--source", "rpkg", db=sqlite_url).returncode == 0
    assert runs(store)[-1] == (0, 0, "done")
    assert refresh_matches_rebuild(store, "appended") == second

    # Rows dated before what the snapshot holds (a backfill): copies of 200 activities, one under new ids
    # at the same time (counts of existing days grow), one 400 days earlier (earlier first times).
    with store.engine.begin() as connection:
        columns = [row[1] for row in connection.exec_driver_sql("PRAGMA table_info(activities)")]
        for tag, moved in (("same", "created_at"), ("early", "datetime(created_at, '-400 days')")):
            values = [
                f"'{tag}:' || {column}"
                if column in ("id", "native_id")
                else moved
                if column == "created_at"
                else column
                for column in columns
            ]
            connection.exec_driver_sql(
                f"INSERT INTO activities ({', '.join(columns)}) SELECT {', '.join(values)} FROM activities "
                "WHERE rowid % 50 = 0 LIMIT 200"
            )
        connection.exec_driver_sql(
            "INSERT INTO import_runs (source_id, platform, started_at, finished_at, added, updated, present, "
            "quarantined, status) VALUES ('rpkg', 'mbox', '2026-12-01', '2026-12-01', 400, 0, 0, 0, 'done')"
        )
    backfilled = refresh_matches_rebuild(store, "appended")
    assert len(backfilled["activities"]) == len(second["activities"]) + 400
    assert backfilled["member_first"] != second["member_first"]
    assert backfilled["daily_activities"] != second["daily_activities"]

    # A new sentiment model relabels every activity in place: the old labels are replaced, not added to.
    relabelled = enrich(store, tasks=["sentiment"], classifier=Contrarian(default_classifier()))
    assert relabelled.enriched > 1000
    after_relabel = refresh_matches_rebuild(store, "appended")
    sentiment = [row for row in after_relabel["enrichments"] if row[1] == "sentiment"]
    assert len(sentiment) == relabelled.enriched  # one row per activity, the old one replaced
    assert {label for _, _, label, _ in sentiment} == {"negative", "positive"}
    others = [row for row in after_relabel["enrichments"] if row[1] != "sentiment"]
    assert others == [row for row in backfilled["enrichments"] if row[1] != "sentiment"]
    assert after_relabel["daily_labels"] != backfilled["daily_labels"]
    backfilled = after_relabel

    # A merge regroups identities: facts keyed by member change.
    with store.engine.connect() as connection:
        keep, absorb = (
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT member_id FROM identities GROUP BY member_id ORDER BY count(*) DESC, member_id LIMIT 2"
            )
        )
        absorb_rows = connection.exec_driver_sql(
            "SELECT count(*) FROM activities a JOIN identities i ON i.id = a.identity_id WHERE i.member_id = ?",
            (absorb,),
        ).scalar_one()
    assert absorb_rows > 0
    assert parvis("members", "merge", keep, absorb, db=sqlite_url).returncode == 0
    merged = refresh_matches_rebuild(store, "appended")
    assert merged["member_first"] != backfilled["member_first"]
    store.close()
    engines._cache.clear()
