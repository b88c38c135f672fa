"""The index over the real database: batch linkage of the FHIR store from the command line, re-runs that respect what
people decided, and the demo patients."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from yilian.cli import app
from yilian.db import read_session, unit_of_work
from yilian.fhir import store
from yilian.patients import service
from yilian.patients.demo import add_demo_patients
from yilian.patients.generator import generate
from yilian.patients.models import MpiLink, MpiReview
from yilian.security.actor import SYSTEM
from yilian.security.models import AuditEvent


def _load(records: int = 150, seed: int = 5) -> object:
    data = generate(records, seed=seed, hard_negative_rate=0.2)
    with unit_of_work() as session:
        store.bulk_put(session, data.patients)
    return data


def _link_json() -> dict:
    result = CliRunner().invoke(app, ["patients", "link", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_yilian_patients_link_prints_clusters_and_review_pairs_as_json(fresh) -> None:
    data = _load()
    out = _link_json()
    assert set(out) == {"clusters", "review"}
    assert out["clusters"] and all(len(c) >= 2 for c in out["clusters"])
    assert all(ref.startswith("Patient/") for c in out["clusters"] for ref in c)
    truth = data.truth  # type: ignore[attr-defined]
    wrong = [c for c in out["clusters"] if len({truth[r] for r in c}) > 1]
    assert not wrong
    assert all(len(r) == 3 and 0.8 <= r[2] <= 1 for r in out["review"])
    # The index now holds the grouping: the same clusters, and a re-run changes nothing.
    with read_session() as session:
        assert service.clusters(session) == sorted(out["clusters"], key=lambda c: c[0])
        links_before = session.scalar(select(func.count()).select_from(MpiLink))
    assert _link_json()["clusters"] == out["clusters"]
    with read_session() as session:
        assert session.scalar(select(func.count()).select_from(MpiLink)) == links_before


def test_a_rerun_keeps_what_people_decided(fresh) -> None:
    _load()
    out = _link_json()
    assert out["review"]
    cluster = out["clusters"][0]
    with unit_of_work() as session:
        review = session.scalar(select(MpiReview).where(MpiReview.status == "open"))
        assert review is not None
        service.decide_review(session, SYSTEM, review.id, "separate", reason="两个人")
        apart = (review.left_ref, review.right_ref)
        service.unmerge(session, SYSTEM, [cluster[0]], reason="录入错误")
    again = _link_json()
    joined = {frozenset(c) for c in again["clusters"]}
    assert not any({cluster[0], *cluster[1:2]} <= c for c in joined)  # the separated record stays out
    assert not any(set(apart) <= c for c in joined)
    assert not any(sorted(r[:2]) == sorted(apart) for r in again["review"])  # not asked again either
    with read_session() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"mpi.review.separate", "mpi.unmerge", "mpi.link_all"} <= actions


def test_the_demo_patients_are_registered_at_real_facilities_with_planted_duplicates(fresh) -> None:
    with unit_of_work() as session:
        summary = add_demo_patients(session, records=60, seed=3)
    assert summary["patients"] >= 60 and summary["clusters"] >= 10
    with read_session() as session:
        cluster = service.clusters(session)[0]
        person = service.person_of(session, cluster[0])
        facilities = {r.display["facility"] for r in person.records}
        assert len(person.records) >= 2 and None not in facilities
        everything = store.everything(session, cluster[0].split("/")[1])
        assert {r["resourceType"] for r in everything.resources} >= {"Patient", "Encounter", "Observation"}
