"""A county doctor finds a patient registered at several facilities and sees one person with every record; a
consortium administrator opens the duplicate review queue."""

from __future__ import annotations

import json
import subprocess
import sys


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "yilian2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _yilian(demo_site, *args: str) -> str:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", "yilian", *args], env=demo_site.env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_it_shows_one_person_with_the_records_of_every_member_facility(page, demo_site, shot) -> None:  # type: ignore[no-untyped-def]
    # `yilian demo` registered patients with planted duplicates at several facilities and linked them
    clusters = json.loads(_yilian(demo_site, "patients", "link", "--format", "json", "--no-save"))["clusters"]
    person = next(
        p
        for p in (json.loads(_yilian(demo_site, "patients", "person", c[0])) for c in clusters if len(c) >= 2)
        if len({r["facility"] for r in p["records"]}) >= 2
    )
    name = person["records"][0]["name"]
    facilities = {r["facility"] for r in person["records"]}

    sign_in(page, demo_site.url, "county")
    page.get_by_test_id("patient-index").get_by_role("textbox").fill(name)
    page.get_by_test_id("patient-index").get_by_role("button").click()
    # namesakes are planted too: the person we mean is one of the results, opened by its link
    page.get_by_test_id("search-results").locator(f"a[href$='{person['person']}']").first.click()
    records = page.get_by_test_id("linked-record")
    assert records.count() >= 2
    text = page.get_by_test_id("records").inner_text()
    for facility in facilities:
        assert facility in text
    assert page.get_by_test_id("timeline").locator("tbody tr").count() >= 2
    shot("person")

    page.context.clear_cookies()  # sign out
    sign_in(page, demo_site.url, "consortium")
    page.get_by_role("link", name="重复档案审核").click()
    assert "疑似重复档案" in page.inner_text("main")
    shot("review-queue")
