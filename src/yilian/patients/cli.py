"""`yilian patients ...` commands: batch linkage, generated test records, the review queue."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Master patient index: linkage and review")
err = Console(stderr=True)


def _read_ndjson(path: Path) -> list[dict[str, Any]]:
    from yilian.errors import Invalid

    patients = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Invalid(f"{path}:{number}: not JSON ({exc.msg})", field="input") from None
            if resource.get("resourceType") == "Patient":
                if not resource.get("id"):
                    raise Invalid(f"{path}:{number}: a Patient needs an id to be linked", field="input")
                patients.append(resource)
    return patients


@app.command("link")
def link(
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    input: Annotated[
        Path | None,
        typer.Option("--input", help="Link Patient resources from this NDJSON file instead of the FHIR store."),
    ] = None,
    save: Annotated[
        bool | None,
        typer.Option("--save/--no-save", help="Write the grouping to the index (default: yes for the store)."),
    ] = None,
) -> None:
    """Batch-link every Patient (Splink on DuckDB) and print the clusters and the pairs for review."""
    from yilian import migrations
    from yilian.db import get_engine, read_session, unit_of_work
    from yilian.patients import linkage, service
    from yilian.patients.features import features

    if format not in ("text", "json"):
        raise typer.BadParameter("text or json", param_hint="--format")
    started = time.perf_counter()

    def say(message: str) -> None:
        err.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {message}")

    write = save if save is not None else input is None
    if input is None or write:
        migrations.require_current(get_engine())
    if write:
        with unit_of_work() as session:
            patients = _read_ndjson(input) if input is not None else list(service.iter_store_patients(session))
            say(f"read {len(patients)} Patient resources")
            result = service.link_all(session, patients, progress=say).result
    else:
        if input is not None:
            patients = _read_ndjson(input)
        else:
            with read_session() as session:
                patients = list(service.iter_store_patients(session))
        say(f"read {len(patients)} Patient resources")
        thresholds = service.Thresholds.from_settings()
        result = linkage.link_batch(
            [features(p) for p in patients], auto_link=thresholds.auto_link, review=thresholds.review, progress=say
        )
    clusters = [list(cluster) for cluster in result.clusters if len(cluster) > 1]
    review = [[s.left, s.right, round(s.probability, 4)] for s in sorted(result.review, key=lambda s: -s.probability)]
    say(f"{len(clusters)} clusters, {len(review)} pairs for review, {result.pairs_scored} pairs scored")
    if format == "json":
        sys.stdout.write(json.dumps({"clusters": clusters, "review": review}, ensure_ascii=False) + "\n")
        return
    for cluster in clusters:
        typer.echo("  ".join(cluster))
    for left, right, score in review:
        typer.echo(f"review\t{left}\t{right}\t{score}")


@app.command("generate")
def generate(
    output: Annotated[Path, typer.Option("--output", help="NDJSON file of Patient resources to write.")],
    records: Annotated[int, typer.Option(help="About how many records.")] = 1000,
    seed: Annotated[int, typer.Option(help="Same seed, same records.")] = 1,
    truth: Annotated[Path | None, typer.Option(help="Also write {Patient/<id>: person} as JSON here.")] = None,
) -> None:
    """Write realistic noisy patient records (duplicates across facilities, twins, namesakes) for trials."""
    from yilian.patients.generator import generate as make

    data = make(records, seed=seed)
    with output.open("w", encoding="utf-8") as fh:
        for patient in data.patients:
            fh.write(json.dumps(patient, ensure_ascii=False) + "\n")
    if truth is not None:
        truth.write_text(json.dumps(data.truth, ensure_ascii=False))
    err.print(
        f"[green]wrote[/] {len(data.patients)} Patient resources to {output} ({len(data.hard_negatives)} hard negatives)"
    )


@app.command("review")
def review(
    limit: Annotated[int, typer.Option(help="How many pairs.")] = 20,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """List the open review queue, most likely matches first."""
    from yilian.db import read_session
    from yilian.patients import service

    with read_session() as session:
        items = service.review_queue(session, limit=limit)
    if format == "json":
        out = [{"id": str(i.id), "score": i.score, "left": i.left, "right": i.right} for i in items]
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    for i in items:
        typer.echo(
            f"{i.id}\t{i.score:.3f}\t{i.left.get('name')} {i.left.get('birthDate')} ({i.left.get('facility')})"
            f"\t{i.right.get('name')} {i.right.get('birthDate')} ({i.right.get('facility')})"
        )


@app.command("sync")
def sync(limit: Annotated[int, typer.Option(help="At most this many records in one run.")] = 100_000) -> None:
    """Match every Patient written to the FHIR store since the index last saw it (one by one, incremental)."""
    from yilian import migrations
    from yilian.db import get_engine, unit_of_work
    from yilian.patients import service

    migrations.require_current(get_engine())
    with unit_of_work() as session:
        done = service.sync_index(session, limit=limit, full=True)
    err.print(f"[green]indexed[/] {done} Patient records")


@app.command("decide")
def decide(
    review_id: Annotated[str, typer.Argument(help="Review item id (see `yilian patients review`).")],
    decision: Annotated[str, typer.Argument(help="link or separate")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history and the audit trail).")] = None,
) -> None:
    """Answer one queued pair as the system: link them into one person or keep them apart for good."""
    import uuid

    from yilian.db import unit_of_work
    from yilian.errors import Invalid
    from yilian.patients import service
    from yilian.security.actor import SYSTEM

    try:
        key = uuid.UUID(review_id)
    except ValueError:
        raise Invalid("A review id is a UUID.", field="review_id") from None
    with unit_of_work() as session:
        review = service.decide_review(session, SYSTEM, key, decision, reason=reason)
        typer.echo(f"{review.left_ref}\t{review.right_ref}\t{review.status}")


@app.command("unmerge")
def unmerge(
    records: Annotated[list[str], typer.Argument(help="Patient/<id> records to take out of their person.")],
    reason: Annotated[str | None, typer.Option(help="Why.")] = None,
) -> None:
    """Separate records from the person they were linked into (history kept; a re-run never joins them again)."""
    from yilian.db import unit_of_work
    from yilian.patients import service
    from yilian.security.actor import SYSTEM

    with unit_of_work() as session:
        person = service.unmerge(session, SYSTEM, records, reason=reason)
        typer.echo(str(person.id))


@app.command("person")
def person(record: Annotated[str, typer.Argument(help="A Patient/<id> record.")]) -> None:
    """Print the person a record belongs to and every record linked with it, as JSON."""
    from yilian.db import unit_of_work
    from yilian.patients import service
    from yilian.security import audit
    from yilian.security.actor import SYSTEM

    with unit_of_work() as session:
        view = service.person_of(session, record)
        for r in view.records:
            audit.record(session, SYSTEM, "patients.read", patient=r.patient_ref, detail={"via": "cli"})
        out = {"person": str(view.id), "records": [{"ref": r.patient_ref, "method": r.link_method, **r.display}
                                                     for r in view.records]}  # fmt: skip
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


@app.command("demo")
def demo(
    records: Annotated[int, typer.Option(help="About how many patient records.")] = 200,
    seed: Annotated[int, typer.Option(help="Same seed, same patients.")] = 1,
) -> None:
    """Add demo patients (with planted duplicates across facilities) to a demo region built by `yilian demo`."""
    from yilian import migrations
    from yilian.db import get_engine, unit_of_work
    from yilian.patients.demo import add_demo_patients

    migrations.require_current(get_engine())
    with unit_of_work() as session:
        summary = add_demo_patients(session, records=records, seed=seed, progress=lambda m: err.print(f"  {m}"))
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
