"""The referral loop in the browser, in the demo region: a village doctor refers a hypertensive patient up, the
referral centre offers, the county hospital accepts, books, treats, discharges and sends the patient back down with a
plan, the township family doctor follows up and closes the referral."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

BASE_ARGS = {"locale": "zh-CN", "viewport": {"width": 1366, "height": 900}}
SHOTS = Path(os.environ.get("YILIAN_SCREENSHOTS", "test-results/screenshots"))


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def signed_in(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(**BASE_ARGS)
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "yilian2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return context, page


def do(page, action: str, **fields: str) -> None:  # type: ignore[no-untyped-def]
    form = page.get_by_test_id(f"form-{action}")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    form.get_by_test_id(f"do-{action}").click()
    page.wait_for_load_state()


def test_it_closes_the_loop_of_a_hypertensive_village_patient_in_the_browser(browser, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    county_ctx, county = signed_in(browser, base, "county")
    county_name = county.get_by_test_id("my-facility").locator("h2 a").inner_text().strip()

    village_ctx, village = signed_in(browser, base, "village")
    pid = str(uuid.uuid4())
    created = village.request.put(
        f"{base}/fhir/Patient/{pid}",
        data={"resourceType": "Patient", "id": pid, "name": [{"text": "张建国"}], "gender": "male"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert created.status in (200, 201), created.text()
    assert village.get_by_test_id("referral-queues").is_visible()
    village.goto(f"{base}/referrals/new?patient=Patient/{pid}")
    form = village.get_by_test_id("send-form")
    form.locator("[name=diagnosis_codes]").fill("I10")
    form.locator("[name=systolic]").fill("186")
    form.locator("[name=diastolic]").fill("114")
    form.locator("[name=reason]").fill("首诊血压 186/114 mmHg，头痛")
    form.locator("[name=consent]").check()
    form.get_by_test_id("send").click()
    village.wait_for_url(re.compile(r"/referrals/[0-9a-f-]{36}$"))
    url = village.url
    assert village.get_by_test_id("state").inner_text() == "已提交"
    assert "首诊血压 ≥180/110 mmHg" in village.get_by_test_id("criteria").inner_text()
    routing = village.get_by_test_id("routing")
    assert county_name in routing.locator("tbody tr").first.inner_text()  # the router proposes the county hospital
    assert "next level up" in routing.inner_text() or "own consortium" in routing.inner_text()
    shot(village, "referral-sent")

    coord_ctx, coordinator = signed_in(browser, base, "coordinator")
    coordinator.goto(f"{base}/referrals?queue=to_triage")
    coordinator.locator(f"a[href='{url.removeprefix(base)}']").click()
    do(coordinator, "triage")
    coordinator.get_by_test_id("form-offer").locator("select[name=facility_id]").select_option(label=county_name)
    do(coordinator, "offer")
    assert coordinator.get_by_test_id("state").inner_text() == "已派送接收方"
    assert county_name in coordinator.get_by_test_id("receiver").inner_text()
    assert coordinator.get_by_test_id("insurance").is_visible()

    county.goto(f"{base}/referrals?queue=offered")
    county.locator(f"a[href='{url.removeprefix(base)}']").click()
    do(county, "accept")
    do(county, "book")
    assert county.get_by_test_id("appointment").is_visible()
    do(county, "arrive")
    do(county, "start_treatment")
    do(county, "discharge", systolic="128", diastolic="82", flags="regimen_set, controlled_2_weeks", summary="血压控制")
    do(county, "down_refer", plan="氨氯地平 5mg 每日一次；两周后复查血压")
    assert county.get_by_test_id("state").inner_text() == "已下转"
    assert county.get_by_test_id("care-plan").is_visible()

    town_ctx, township = signed_in(browser, base, "township")
    township.goto(f"{base}/referrals?queue=follow_up")
    township.locator(f"a[href='{url.removeprefix(base)}']").click()
    do(township, "follow_up", note="血压 132/84，按时服药")
    do(township, "close")
    assert township.get_by_test_id("state").inner_text() == "已闭环"
    history = township.get_by_test_id("history").inner_text()
    for step in ("提交", "分诊", "接收", "出院", "带康复计划下转", "记录随访", "闭环"):
        assert step in history
    shot(township, "referral-closed")

    task = township.request.get(f"{base}/fhir/Task/{url.rsplit('/', 1)[1]}").json()
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "closed"
    for ctx in (county_ctx, village_ctx, coord_ctx, town_ctx):
        ctx.close()


def test_it_takes_a_chest_pain_patient_from_the_township_to_the_regional_centre_through_the_green_channel(
    browser, demo_site
) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    expert_ctx, expert = signed_in(browser, base, "expert")
    centre = expert.get_by_test_id("my-facility").locator("h2 a")
    centre_name, centre_id = centre.inner_text().strip(), centre.get_attribute("href").rsplit("/", 1)[1]

    town_ctx, township = signed_in(browser, base, "township")
    pid = str(uuid.uuid4())
    township.request.put(
        f"{base}/fhir/Patient/{pid}",
        data={"resourceType": "Patient", "id": pid, "name": [{"text": "王大山"}], "gender": "male"},
        headers={"Content-Type": "application/fhir+json"},
    )
    township.goto(f"{base}/referrals/new?patient=Patient/{pid}")
    form = township.get_by_test_id("send-form")
    form.locator("[name=diagnosis_codes]").fill("I21.9")
    form.locator("[name=reason]").fill("持续胸痛 40 分钟，心电图 ST 段抬高")
    form.locator("[name=green_channel]").select_option("chest_pain")
    form.locator("[name=symptom_onset]").fill("2026-11-23T08:00")
    form.locator("[name=target]").fill(centre_id)
    form.locator("[name=consent]").check()
    form.get_by_test_id("send").click()
    township.wait_for_url(re.compile(r"/referrals/[0-9a-f-]{36}$"))
    url = township.url.removeprefix(base)
    # No queue: offered to the centre at once.
    assert township.get_by_test_id("state").inner_text() == "已派送接收方"
    assert centre_name in township.get_by_test_id("receiver").inner_text()
    assert "胸痛" in township.get_by_test_id("green-channel").inner_text()
    township.get_by_test_id("form-times").locator("select[name=point]").select_option("transfer_start")
    township.get_by_test_id("form-times").locator("button").click()

    expert.goto(f"{base}/referrals?queue=offered")
    expert.locator(f"a[href='{url}']").click()
    do(expert, "accept")
    do(expert, "book")
    do(expert, "arrive")
    expert.get_by_test_id("form-times").locator("select[name=point]").select_option("key_treatment")
    expert.get_by_test_id("form-times").locator("button").click()
    chain = expert.get_by_test_id("time-chain").inner_text()
    for point in ("发病", "首次医疗接触" if "首次医疗接触" in chain else "发起转诊", "开始转运", "到达", "关键治疗"):
        assert point in chain
    assert "240" in chain  # the whole-chain target, minutes
    shot(expert, "green-channel")
    for ctx in (expert_ctx, town_ctx):
        ctx.close()
