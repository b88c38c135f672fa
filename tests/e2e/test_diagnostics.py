"""A village clinic uploads an ECG; the county ECG centre reads and signs it; the village doctor is told and prints it."""

from __future__ import annotations

import subprocess
import sys

import httpx

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "yilian2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def a_patient_of_the_village(demo_site) -> str:  # type: ignore[no-untyped-def]
    token = subprocess.run(
        [sys.executable, "-m", "yilian", "token", "--user", "village"],
        env=demo_site.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    patient = {"resourceType": "Patient", "name": [{"text": "张秀兰"}], "gender": "female", "birthDate": "1956-04-12"}
    r = httpx.post(
        f"{demo_site.url}/fhir/Patient",
        json=patient,
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 201, r.text
    return f"Patient/{r.json()['id']}"


def test_it_brings_a_village_ecg_read_at_the_county_centre_back_to_the_village_printer(
    page, browser, demo_site, shot
) -> None:  # type: ignore[no-untyped-def]
    patient = a_patient_of_the_village(demo_site)
    base = demo_site.url

    # The village doctor orders a 12-lead ECG and uploads the machine's PDF with the measured values.
    sign_in(page, base, "village")
    page.goto(f"{base}/diagnostics/orders/new")
    page.fill("input[name=patient]", patient)
    page.select_option("select[name=item_code]", "ECG-12")
    page.fill("textarea[name=clinical_question]", "活动后胸闷一周")
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(f"{base}/diagnostics/orders/*")
    page.set_input_files("input[name=file]", {"name": "ecg.pdf", "mimeType": "application/pdf", "buffer": PDF})
    page.fill("input[name=heart_rate]", "76")
    page.fill("input[name=qtc]", "436")
    page.get_by_role("button", name="上传").click()
    assert "待诊断" in page.get_by_test_id("order").inner_text()
    shot("diagnostics-village-uploaded")

    # The county hospital's reader finds it on the ECG centre's worklist and signs the report.
    county = browser.new_context(locale="zh-CN").new_page()
    sign_in(county, base, "county")
    county.get_by_test_id("worklist-link").click()
    row = county.get_by_test_id("worklist").get_by_role("row").filter(has_text="张秀兰")
    row.get_by_test_id("read-link").click()
    county.get_by_test_id("claim").click()  # take the study so that no colleague reads it too
    assert "county" in county.get_by_test_id("claimed-by").inner_text()
    order_url = county.url
    county.fill("textarea[name=findings]", "窦性心律，心率76次/分，QTc 436 ms")
    county.fill("textarea[name=conclusion]", "窦性心律，正常心电图")
    county.get_by_role("button", name="签发报告").click()
    county.wait_for_url(f"{base}/diagnostics/worklist")
    assert "张秀兰" not in county.get_by_test_id("worklist").inner_text()
    county.context.close()

    # Back at the village clinic: the notification is on the home page and the report prints there.
    page.goto(f"{base}/")
    inbox = page.get_by_test_id("diagnostics-inbox")
    assert "报告已出" in inbox.inner_text()
    inbox.get_by_role("link", name="窦性心律，正常心电图").first.click()
    view = page.get_by_test_id("print-view").inner_text()
    for text in ("张秀兰", "窦性心律，正常心电图", "人民医院", "76"):
        assert text in view
    shot("diagnostics-village-print")

    # The reader corrects the signed report: the village is told again and prints the amended version.
    county = browser.new_context(locale="zh-CN").new_page()
    sign_in(county, base, "county")
    county.goto(order_url)
    county.get_by_text("更正报告").first.click()
    county.fill("form[data-testid=amend-form] textarea[name=conclusion]", "窦性心律，T波低平")
    county.fill("form[data-testid=amend-form] input[name=reason]", "漏看V5导联T波")
    county.get_by_role("button", name="签发更正报告").click()
    assert "漏看V5导联T波" in county.get_by_test_id("amended").inner_text()
    assert "窦性心律，正常心电图" in county.get_by_test_id("earlier-versions").inner_text()
    county.context.close()
    page.goto(f"{base}/")
    assert "报告已更正" in page.get_by_test_id("diagnostics-inbox").inner_text()
    page.goto(order_url + "/print")
    assert "漏看V5导联T波" in page.get_by_test_id("print-view").inner_text()
    shot("diagnostics-village-print-amended")


def test_the_demo_has_what_outside_checks_look_for(demo_site) -> None:  # type: ignore[no-untyped-def]
    """Contract of issue 6: ≥ 50 final DiagnosticReports from reading centres, ≥ 10 ImagingStudy resources, consultation
    ServiceRequests with SNOMED CT 11429006, and the recognition catalogue as JSON."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from yilian.fhir import store

    engine = create_engine(demo_site.db_url)
    try:
        with Session(engine) as session:
            reports = store.search(
                session, "DiagnosticReport", [("status", "final"), ("category", "EC,RAD,LAB,SP"), ("_summary", "count")]
            ).total
            studies = store.search(session, "ImagingStudy", [("_summary", "count")]).total
            consults = store.search(
                session, "ServiceRequest", [("category", "http://snomed.info/sct|11429006"), ("_summary", "count")]
            ).total
    finally:
        engine.dispose()
    assert (reports or 0) >= 50 and (studies or 0) >= 10 and (consults or 0) >= 1, (reports, studies, consults)
    token = subprocess.run(
        [sys.executable, "-m", "yilian", "token", "--user", "village"],
        env=demo_site.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    r = httpx.get(
        f"{demo_site.url}/api/v1/recognition/catalogue", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert r.status_code == 200 and len(r.json()) >= 12 and all("validity_days" in i for i in r.json())
