"""Two people sign in to the demo region and see their own world — and not more."""

from __future__ import annotations


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "yilian2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_it_shows_a_city_official_the_linfen_network_with_its_map(page, demo_site, shot) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site.url, "official")
    overview = page.get_by_test_id("network-overview")
    assert "临汾市" in overview.inner_text()
    facilities = int(page.get_by_test_id("facility-count").inner_text().replace(",", ""))
    assert facilities > 1000
    levels = page.get_by_test_id("counts-per-level").inner_text()
    for word in ("县级医院", "乡镇卫生院", "村卫生室"):
        assert word in levels
    page.wait_for_function("document.querySelector('[data-testid=facility-map] canvas') !== null")
    shot("official-home")
    # Drill down from the city to one of its counties.
    page.get_by_role("link", name="洪洞县", exact=True).click()
    assert "洪洞县" in page.get_by_test_id("network-overview").inner_text()
    assert int(page.get_by_test_id("facility-count").inner_text().replace(",", "")) < facilities


def test_it_shows_a_village_doctor_their_clinic_and_consortium_but_not_the_commission_view(
    page, demo_site, shot
) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site.url, "village")
    assert "村卫生室" in page.get_by_test_id("my-facility").inner_text()
    assert "医疗集团" in page.get_by_test_id("my-consortia").inner_text()
    assert page.get_by_test_id("referral-queues").is_visible()  # the referral domain's queues on the home page
    assert page.get_by_test_id("network-overview").count() == 0
    assert page.get_by_role("link", name="网络概览").count() == 0
    shot("village-home")
    response = page.goto(f"{demo_site.url}/network/overview?division=1410")
    assert response is not None and response.status == 403
    assert "卫健委" in page.inner_text("main")


def test_it_switches_the_interface_to_english_and_back(page, demo_site, shot) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site.url, "official")
    page.get_by_role("link", name="English").click()
    assert "Facilities per level" in page.inner_text("main")
    assert page.get_by_role("button", name="Sign out").is_visible()
    page.get_by_role("link", name="中文").click()
    assert "各级机构数" in page.inner_text("main")


def test_it_opens_a_consortium_with_its_lead_and_members(page, demo_site, shot) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site.url, "county")
    page.get_by_test_id("my-consortia").get_by_role("link").first.click()
    members = page.get_by_test_id("members").inner_text()
    assert "牵头" in members and "乡镇卫生院" in members
    assert int(page.get_by_test_id("member-count").inner_text()) > 10
    shot("consortium")
