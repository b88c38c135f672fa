"""Linkage quality and speed of the master patient index on generated noisy Chinese patient records.

Generates records with ground truth (duplicates across facilities with homophones, traditional forms, dropped
characters, swapped or mistyped birth dates, changed phones; hard negatives: namesakes born the same day, twins,
father and son with the same name), links them in one batch (Splink 5 on DuckDB, the production code path), and
reports pairwise precision / recall / F1 of the auto-links, how many pairs went to review, how many of those were
true, and whether any hard negative was merged. Also times the incremental matcher on single registrations.

    python benchmarks/linkage.py            # 100,000 records
    python benchmarks/linkage.py --quick    # 10,000 records
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from datetime import date

from yilian.patients import linkage, rules
from yilian.patients.features import features_many, no_gc
from yilian.patients.generator import generate


def pairs_of(clusters: list[list[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for c in clusters for p in itertools.combinations(c, 2)}  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 records")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--auto-link", type=float, default=0.97)
    parser.add_argument("--review", type=float, default=0.80)
    args = parser.parse_args()
    n = 10_000 if args.quick else args.records

    t0 = time.perf_counter()
    with no_gc():  # the generator allocates millions of small objects; see features.no_gc
        data = generate(n, seed=args.seed)
    t_generate = time.perf_counter() - t0
    print(f"generated {len(data.patients)} records in {t_generate:.1f} s", file=sys.stderr)

    t1 = time.perf_counter()
    feats = features_many(data.patients)
    t_features = time.perf_counter() - t1
    print(f"features in {t_features:.1f} s", file=sys.stderr)

    t2 = time.perf_counter()
    result = linkage.link_batch(
        feats, auto_link=args.auto_link, review=args.review, progress=lambda m: print("  " + m, file=sys.stderr)
    )
    t_link = time.perf_counter() - t2

    true = data.true_pairs()
    predicted = pairs_of(result.clusters)
    tp = len(predicted & true)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    review_pairs = {tuple(sorted((s.left, s.right))) for s in result.review}
    review_true = len(review_pairs & true)
    # Recall if a person confirmed every true pair in the review queue (upper bound of the workflow).
    after_review = len((predicted | (review_pairs & true)) & true) / len(true) if true else 1.0

    cluster_of = {ref: i for i, c in enumerate(result.clusters) for ref in c}
    records_of: dict[str, list[str]] = {}
    for ref, person in data.truth.items():
        records_of.setdefault(person, []).append(ref)
    merged_negatives = sum(
        1
        for _kind, a, b in data.hard_negatives
        if {cluster_of[r] for r in records_of[a]} & {cluster_of[r] for r in records_of[b]}
    )

    # Incremental matcher: register the second record of 1,000 persons against an index of everything else.
    index = linkage.MemoryIndex(feats)
    multi = [refs for refs in records_of.values() if len(refs) > 1][:1000]
    by_ref = {f.ref: f for f in feats}
    t3 = time.perf_counter()
    found = 0
    for refs in multi:
        best = next(iter(index.match(by_ref[refs[1]])), None)
        if best and rules.route(best, auto_link=args.auto_link, review=args.review) == rules.Outcome.LINK:
            found += data.truth[best.right] == data.truth[refs[1]]
    t_incremental = time.perf_counter() - t3

    out = {
        "records": len(feats),
        "persons": len(records_of),
        "true_pairs": len(true),
        "hard_negatives": len(data.hard_negatives),
        "pairs_scored": result.pairs_scored,
        "auto_linked_pairs": len(predicted),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "review_pairs": len(review_pairs),
        "review_pairs_true": review_true,
        "recall_after_review": round(after_review, 4),
        "hard_negatives_merged": merged_negatives,
        "thresholds": {"auto_link": args.auto_link, "review": args.review},
        "generate_s": round(t_generate, 1),
        "features_s": round(t_features, 1),
        "link_s": round(t_link, 1),
        "link_timings_s": {k: round(v, 1) for k, v in result.timings.items()},
        "features_and_link_s": round(t_features + t_link, 1),
        "incremental_ms_per_record": round(1000 * t_incremental / max(1, len(multi)), 2),
        "incremental_found": f"{found}/{len(multi)}",
        "machine": f"{os.cpu_count()} cores ({platform.machine()})",
        "date": date.today().isoformat(),
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
