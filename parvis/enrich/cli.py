"""Commands of the enrichment package: ``enrich``, ``classify``, ``evaluate`` and ``train``.

Heavy modules (numpy, the models) are imported inside the commands, so ``parvis --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

TASK_NAMES = ("language", "sentiment", "toxicity", "question")
CLASSIFY_BATCH = 1000


def _fail(message: str) -> None:
    from parvis.cli import fail

    fail(message)


def _classifier(model: Path | None) -> Any:
    from parvis.enrich.models import ModelError, load_bundle
    from parvis.enrich.pipeline import LinearClassifier, default_classifier

    try:
        return LinearClassifier(load_bundle(model)) if model else default_classifier()
    except ModelError as problem:
        _fail(str(problem))


model_option = click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A model file made by `parvis train` (default: shipped).",
)
data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The labelled data folder (default: $PARVIS_SHARED_DATA or the nearest shared/data).",
)


@click.command()
@click.option("--only", "tasks", multiple=True, type=click.Choice(TASK_NAMES), help="Run only these enrichers.")
@click.option("--batch-size", type=click.IntRange(1), default=2000, show_default=True)
@model_option
@click.pass_obj
def enrich(context: Any, tasks: tuple[str, ...], batch_size: int, model: Path | None) -> None:
    """Label the store's activities: language, sentiment, toxicity, question.

    Only new or changed activities are computed (or all, for an enricher whose model changed).
    """
    from parvis.cli import err, out, user_errors
    from parvis.enrich.run import enrich as run_enrich
    from parvis.enrich.run import pending_count

    classifier = _classifier(model)
    chosen = tasks or TASK_NAMES
    with user_errors():
        total = pending_count(context.store, chosen, classifier)
        if err.is_terminal and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (TextColumn("enriching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, console=err, transient=True) as progress:
                bar = progress.add_task("enrich", total=total)
                summary = run_enrich(
                    context.store,
                    tasks=chosen,
                    classifier=classifier,
                    batch_size=batch_size,
                    progress=lambda done: progress.advance(bar, done),
                )
        else:
            summary = run_enrich(context.store, tasks=chosen, classifier=classifier, batch_size=batch_size)
    out.print(summary.one_line(), markup=False)


@click.command()
@click.argument("task", type=click.Choice(TASK_NAMES))
@click.option("--lang", type=click.Choice(("fr", "en")), help="The texts' language, if known (skips detection).")
@model_option
def classify(task: str, lang: str | None, model: Path | None) -> None:
    """Classify text read from standard input, one text per line; one JSON object per line out.

    Objects have `label` and `score` (and `lang` for the language task).
    """
    classifier = _classifier(model)
    stdin = sys.stdin.buffer
    batch: list[str] = []

    def flush() -> None:
        for result in classifier.classify(batch, (task,), lang)[task]:
            record: dict[str, Any] = {"label": result.label, "score": result.score}
            if task == "language":
                record["lang"] = result.label
            record.update(result.extras)
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        batch.clear()

    try:
        for line in stdin:
            batch.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(batch) >= CLASSIFY_BATCH:
                flush()
        if batch:
            flush()
    except BrokenPipeError:
        sys.stderr.close()
    except KeyboardInterrupt:
        _fail("interrupted")


@click.command()
@data_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/quality.md"),
    show_default=True,
    help="Where to write the report ('-' for standard output).",
)
@model_option
def evaluate(data_dir: Path | None, output: Path, model: Path | None) -> None:
    """Measure the models against baselines on held-out labelled data; write docs/quality.md."""
    from parvis.enrich.data import DataError, data_root
    from parvis.enrich.evaluate import evaluate as run_evaluate

    classifier = _classifier(model)
    try:
        report = run_evaluate(data_root(data_dir), classifier, log=lambda line: click.echo(line, err=True))
    except (DataError, OSError) as problem:
        _fail(str(problem))
        return
    if str(output) == "-":
        click.echo(report)
    else:
        output.write_text(report + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@click.command()
@data_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("parvis/enrich/models/default.npz"),
    show_default=True,
)
def train(data_dir: Path | None, output: Path) -> None:
    """Train the default models from the labelled data (needs the [train] extra)."""
    from parvis.enrich.data import DataError, data_root
    from parvis.enrich.train import TrainingError
    from parvis.enrich.train import train as run_train

    try:
        run_train(data_root(data_dir), output, log=lambda line: click.echo(line, err=True))
    except (DataError, TrainingError, OSError) as problem:
        _fail(str(problem))


def register(main: click.Group) -> None:
    for command in (enrich, classify, evaluate, train):
        main.add_command(command)
