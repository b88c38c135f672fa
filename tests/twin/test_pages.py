"""The twin page on the real server: an official builds a scenario, runs it in the background and reads the
comparison; a mistake names its field; the saved scenario is the YAML the command line reads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from yilian.db import unit_of_work
from yilian.twin import scenarios

HONGDONG = "141024"
YANDI = "141024200"
HX = {"HX-Request": "true"}


@pytest.fixture
def people(clean_db: Engine) -> Iterator[dict[str, dict[str, str]]]:
    from yilian.network import service as network
    from yilian.network.schemas import FacilityIn
    from yilian.security import service as security
    from yilian.security import tokens

    with unit_of_work() as session:
        network.load_divisions(session, "14")
        clinic = network.create_facility(
            session,
            FacilityIn(
                code="T1410240001",
                name="淹底乡卫生院",
                level="township_centre",
                division_code=YANDI,
                lon=111.6,
                lat=36.3,
            ),
        )
        security.create_user(
            session, username="official", password="pw-official-1", role="commission_official", division_code="1410"
        )
        security.create_user(
            session, username="doctor", password="pw-doctor-1", role="township_doctor", facility_id=clinic.id
        )
    yield {name: {"Authorization": f"Bearer {tokens.issue(name)}", **HX} for name in ("official", "doctor")}


def _draft(http: Any, who: dict[str, str], changes: list[dict[str, Any]], **fields: Any) -> Any:
    return http.post("/twin/draft", headers=who, data={"area": "1410", "changes": json.dumps(changes), **fields})


def test_it_builds_runs_and_compares_a_scenario_for_an_official(
    http: Any, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    official = people["official"]
    page = http.get("/twin", headers={"Authorization": official["Authorization"]})
    assert page.status_code == 200
    assert "数字孪生" in page.text and "洪洞县" in page.text
    assert 'data-testid="twin-map"' in page.text and YANDI in page.text  # the registry's township centre is on the map

    bad = _draft(http, official, [], type="close_township_centre", township="141024999")
    assert bad.status_code == 404
    assert "township" in bad.text and "141024999" in bad.text

    added = _draft(http, official, [], type="close_township_centre", township=YANDI)
    assert added.status_code == 200, added.text
    assert YANDI in added.text
    changes = [{"type": "close_township_centre", "township": YANDI}]

    nameless = http.post(
        "/twin/runs",
        headers=official,
        data={"area": "1410", "changes": json.dumps(changes), "replications": "2", "years": "0.2"},
    )
    assert nameless.status_code == 422 and "name" in nameless.text
    too_many = http.post(
        "/twin/runs",
        headers=official,
        data={"area": "1410", "changes": json.dumps(changes), "name": "x", "replications": "500", "years": "1"},
    )
    assert too_many.status_code == 422 and "replications" in too_many.text

    started = http.post(
        "/twin/runs",
        headers=official,
        data={
            "area": "1410",
            "changes": json.dumps(changes),
            "name": "关闭淹底乡卫生院",
            "replications": "2",
            "years": "0.2",
            "focus": "1",
        },
    )
    assert started.status_code == 200, started.text
    assert "progress" in started.text
    job_id = started.text.split('hx-get="/twin/runs/')[1].split('"')[0]
    # The run goes on in its own process: the server keeps answering meanwhile.
    began = time.monotonic()
    assert http.get("/healthz").status_code == 200
    assert time.monotonic() - began < 2

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        polled = http.get(f"/twin/runs/{job_id}", headers=official)
        assert polled.status_code == 200
        if 'data-testid="comparison"' in polled.text or "job-failed" in polled.text:
            break
        time.sleep(0.5)
    assert 'data-testid="comparison"' in polled.text, polled.text
    assert "基线" in polled.text and "情景" in polled.text
    assert f'data-testid="comparison-table-{YANDI}"' in polled.text  # the closed township's villages, reported apart

    yaml_text = http.get(f"/twin/runs/{job_id}/scenario.yaml", headers=official)
    assert yaml_text.status_code == 200
    saved = tmp_path / "scenario.yaml"
    saved.write_text(yaml_text.text, encoding="utf-8")
    sc = scenarios.load(saved)
    assert sc.changes[-1] == {"type": "close_township_centre", "township": YANDI}
    assert sc.region == [HONGDONG]


def test_it_speaks_english_when_asked(http: Any, people: dict[str, dict[str, str]]) -> None:
    page = http.get("/twin", headers={"Authorization": people["official"]["Authorization"], "Cookie": "yilian_lang=en"})
    assert page.status_code == 200
    assert (
        "Digital twin" in page.text and "Post resident experts" in page.text and "Run against the baseline" in page.text
    )
    fields = http.get("/twin/fields?type=capitation", headers={**people["official"], "Cookie": "yilian_lang=en"})
    assert "Budget per insured resident" in fields.text


def test_it_keeps_the_twin_from_clinical_staff(http: Any, people: dict[str, dict[str, str]]) -> None:
    assert http.get("/twin", headers=people["doctor"]).status_code == 403
    outside = http.get("/twin?area=4302", headers=people["official"])
    assert outside.status_code == 403 and "area" in outside.text
