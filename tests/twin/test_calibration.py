from __future__ import annotations

from pathlib import Path

from yilian.twin import calibration


def test_it_reproduces_the_national_figures_and_the_yanling_anchors_at_small_scale(tmp_path: Path) -> None:
    report = calibration.calibrate(replications=3, seed=3, scale=0.02, yanling_scale=0.5, years=0.5, workers=2)
    failed = [r for r in report["rows"] if not r["pass"]]
    assert not failed, "\n".join(
        f"{r['area']} {r['indicator']}: model {r['model']:.3f} not in [{r['low']:.3f}, {r['high']:.3f}]" for r in failed
    )
    assert {r["indicator"] for r in report["rows"]} >= {
        "visits_per_person_year",
        "admissions_per_person_year",
        "in_county_admission_share",
        "primary_share_of_visits",
        "county_hospital_outpatient_visits",
        "county_hospital_up_referrals",
        "county_hospital_down_referrals_received",
    }
    page = calibration.to_markdown(report)
    (tmp_path / "twin-calibration.md").write_text(page, encoding="utf-8")
    assert "| region | visits_per_person_year | 6.800 |" in page
    assert "targets within tolerance" in page
