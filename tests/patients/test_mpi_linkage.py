"""Batch and incremental linkage on generated records: planted duplicates found, families kept apart."""

from __future__ import annotations

import itertools

import pytest

from yilian.patients import linkage, rules
from yilian.patients.features import features
from yilian.patients.generator import generate

AUTO, REVIEW = 0.97, 0.80


@pytest.fixture(scope="module")
def generated():
    # A small register with many hard negatives planted (20% of people get a twin, namesake or son).
    return generate(600, seed=11, hard_negative_rate=0.2)


@pytest.fixture(scope="module")
def feats(generated):
    return [features(p) for p in generated.patients]


@pytest.fixture(scope="module")
def result(feats):
    return linkage.link_batch(feats, auto_link=AUTO, review=REVIEW)


def _pairs(clusters):
    return {tuple(sorted(p)) for c in clusters for p in itertools.combinations(c, 2)}


def test_it_finds_the_planted_duplicates(generated, result):
    predicted, true = _pairs(result.clusters), generated.true_pairs()
    tp = len(predicted & true)
    precision, recall = tp / len(predicted), tp / len(true)
    assert precision >= 0.99, (precision, sorted(predicted - true)[:5])
    assert recall >= 0.93, recall
    assert sorted(ref for c in result.clusters for ref in c) == sorted(generated.truth)  # every record exactly once


def test_it_does_not_merge_twins_or_a_father_and_his_son(generated, result):
    person_of_cluster = {}
    for i, cluster in enumerate(result.clusters):
        for ref in cluster:
            person_of_cluster[ref] = i
    records_of: dict[str, list[str]] = {}
    for ref, person in generated.truth.items():
        records_of.setdefault(person, []).append(ref)
    kinds = {kind for kind, _, _ in generated.hard_negatives}
    assert {"twin", "son", "doppelganger"} <= kinds
    for kind, a, b in generated.hard_negatives:
        clusters_a = {person_of_cluster[r] for r in records_of[a]}
        clusters_b = {person_of_cluster[r] for r in records_of[b]}
        assert not clusters_a & clusters_b, (kind, a, b)


def test_no_cluster_holds_two_different_valid_id_numbers(feats, result):
    by_ref = {f.ref: f for f in feats}
    for cluster in result.clusters:
        ids = {by_ref[r].resident_id for r in cluster if by_ref[r].resident_id}
        assert len(ids) <= 1, cluster


def test_splink_and_the_incremental_matcher_give_the_same_score(feats, result):
    by_ref = {f.ref: f for f in feats}
    tf = linkage.name_frequencies(feats)
    checked = 0
    for score in [*result.links, *result.review][:200]:
        a, b = by_ref[score.left], by_ref[score.right]
        mine = rules.score_pair(a, b, name_tf=tf.get(a.name) if a.name == b.name else None)
        assert mine.vector == score.vector, (a, b)
        assert mine.weight == pytest.approx(score.weight, abs=1e-6)
        checked += 1
    assert checked > 50


def test_uncertain_pairs_go_to_review_not_to_a_cluster(result):
    assert result.review, "a register full of twins and namesakes must leave something for a person to decide"
    clustered = {ref: i for i, c in enumerate(result.clusters) for ref in c}
    for score in result.review:
        assert clustered[score.left] != clustered[score.right]
        assert score.probability >= REVIEW or score in result.refused


def test_raising_the_auto_link_threshold_moves_links_to_review(feats, result):
    strict = linkage.link_batch(feats, auto_link=0.999999, review=REVIEW)
    assert sum(len(c) > 1 for c in strict.clusters) < sum(len(c) > 1 for c in result.clusters)
    assert len(strict.review) > len(result.review)


def test_the_incremental_matcher_finds_a_new_registration_of_a_known_person(generated, feats):
    records_of: dict[str, list[int]] = {}
    for i, patient in enumerate(generated.patients):
        records_of.setdefault(generated.truth[f"Patient/{patient['id']}"], []).append(i)
    index = linkage.MemoryIndex()
    found = missed = 0
    for person, positions in records_of.items():
        first, *later = positions
        index.add(feats[first])
        for i in later:
            best = next(iter(index.match(feats[i])), None)
            if best and rules.route(best, auto_link=AUTO, review=REVIEW) == rules.Outcome.LINK:
                assert generated.truth[best.right] == person
                found += 1
            else:
                missed += 1
            index.add(feats[i])
    assert found / (found + missed) >= 0.85, (found, missed)


def test_linking_nothing_or_one_record_is_fine():
    assert linkage.link_batch([], auto_link=AUTO, review=REVIEW).clusters == []
    one = features(generate(1, seed=2).patients[0])
    assert linkage.link_batch([one], auto_link=AUTO, review=REVIEW).clusters == [[one.ref]]


def test_a_record_that_fits_either_twin_goes_to_review():
    # 赵建 (a dropped character) fits both 赵建国 and 赵建宁: same birth date, phone and address. Linking it to whichever
    # came first would mix two people's records; a person decides instead.
    kw = {"gender": "male", "birthDate": "1973-11-18", "telecom": [{"system": "phone", "value": "18060742351"}],
          "address": [{"text": "山西省临汾市翼城县南梁镇前白村3号"}]}  # fmt: skip
    twins = [
        features({"resourceType": "Patient", "id": pid, "name": [{"text": name}], **kw})
        for pid, name in (("a", "赵建国"), ("b", "赵建宁"), ("c", "赵建"))
    ]
    result = linkage.link_batch(twins, auto_link=AUTO, review=REVIEW)
    assert all(len(c) == 1 for c in result.clusters)
    assert {frozenset((s.left, s.right)) for s in result.review} >= {
        frozenset(("Patient/a", "Patient/c")),
        frozenset(("Patient/b", "Patient/c")),
    }
