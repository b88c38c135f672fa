"""Readers claim studies so that two never read the same one; a signed report is corrected by an amended version."""

from __future__ import annotations

import threading

import httpx

from yilian.db import read_session
from yilian.fhir import store

from .test_reading_centre import order_ecg, upload


def test_it_gives_a_study_to_the_first_reader_and_a_409_to_the_second(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, reader, reader2 = as_user("village"), as_user("reader"), as_user("reader2")
    order = order_ecg(village, region.patients["wang"])
    upload(village, order["id"])

    r = reader.post(f"/api/v1/diagnostics/orders/{order['id']}/claim")
    assert r.status_code == 200 and r.json()["claimed_by"] == "reader"
    assert "release" in r.json()["actions"] and "claim" not in r.json()["actions"]
    assert reader.post(f"/api/v1/diagnostics/orders/{order['id']}/claim").status_code == 200  # again: still mine
    r = reader2.post(f"/api/v1/diagnostics/orders/{order['id']}/claim")
    assert r.status_code == 409 and r.json()["field"] == "claimed_by" and "reader" in r.json()["message"]

    seen_by_2 = reader2.get("/api/v1/diagnostics/worklist").json()[0]
    assert seen_by_2["claimed_by"] == "reader" and "sign" not in seen_by_2["actions"]
    r = reader2.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常心电图"})
    assert r.status_code == 409 and r.json()["field"] == "claimed_by"
    assert as_user("village").post(f"/api/v1/diagnostics/orders/{order['id']}/claim").status_code == 403

    # A colleague releases the claim of a reader who went off shift; then reader2 can take and sign it.
    assert reader2.post(f"/api/v1/diagnostics/orders/{order['id']}/release").json()["claimed_by"] is None
    assert reader2.post(f"/api/v1/diagnostics/orders/{order['id']}/claim").status_code == 200
    r = reader2.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常心电图"})
    assert r.status_code == 201 and r.json()["report"]["signed_by"] == "reader2"


def test_two_readers_claiming_at_the_same_moment_get_one_200_and_one_409(region, as_user, live_server) -> None:  # type: ignore[no-untyped-def]
    village = as_user("village")
    order = order_ecg(village, region.patients["wang"])
    upload(village, order["id"])
    barrier = threading.Barrier(2)
    codes: dict[str, int] = {}

    def claim(username: str) -> None:
        api = as_user(username)
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            barrier.wait()
            codes[username] = client.post(
                f"/api/v1/diagnostics/orders/{order['id']}/claim", headers=api.headers
            ).status_code

    threads = [threading.Thread(target=claim, args=(u,)) for u in ("reader", "reader2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [200, 409]


def test_it_amends_a_signed_report_keeps_the_old_one_and_tells_the_ordering_site_again(region, as_user, http) -> None:  # type: ignore[no-untyped-def]
    village, reader = as_user("village"), as_user("reader")
    order = order_ecg(village, region.patients["wang"])
    upload(village, order["id"], heart_rate=72)
    reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常心电图"})

    r = reader.post(f"/api/v1/diagnostics/orders/{order['id']}/amend", json={"conclusion": "窦性心动过缓"})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = village.post(f"/api/v1/diagnostics/orders/{order['id']}/amend", json={"conclusion": "x", "reason": "我想改"})
    assert r.status_code == 403
    r = reader.post(
        f"/api/v1/diagnostics/orders/{order['id']}/amend",
        json={"conclusion": "窦性心动过缓，建议复查", "reason": "心率测量有误", "critical": True},
    )
    assert r.status_code == 200, r.text
    report = r.json()["report"]
    assert report["status"] == "amended" and report["version"] == 2 and report["amend_reason"] == "心率测量有误"
    assert [(v["version"], v["conclusion"]) for v in report["earlier"]] == [(1, "正常心电图")]

    kinds = [n["kind"] for n in village.get("/api/v1/diagnostics/notifications").json()]
    assert kinds[0] == "report_amended" and "report_ready" in kinds
    assert len(village.get("/api/v1/diagnostics/alerts").json()) == 1  # it became critical: an alert too

    with read_session() as session:
        dr = store.read(session, "DiagnosticReport", report["id"])
        _, versions = store.history(session, "DiagnosticReport", report["id"])
    assert dr["status"] == "amended" and dr["conclusion"] == "窦性心动过缓，建议复查"
    assert versions == 2  # the FHIR history keeps the final version next to the amended one

    # The order page shows the amendment and the earlier version; the print view says it is amended.
    http.cookies.set("yilian_session", village.headers["Authorization"].split()[1])
    page = http.get(f"/diagnostics/orders/{order['id']}").text
    assert "心率测量有误" in page and "正常心电图" in page
    printed = http.get(f"/diagnostics/orders/{order['id']}/print").text
    assert "窦性心动过缓" in printed and "心率测量有误" in printed
