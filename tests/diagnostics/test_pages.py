"""The pages a doctor uses: the order form stops on a recognised result, and every diagnostics page opens."""

from __future__ import annotations

import httpx

from yilian.security import tokens

from .test_recognition import result_elsewhere


def browser_of(http: httpx.Client, username: str) -> httpx.Client:
    client = httpx.Client(base_url=str(http.base_url), timeout=30, follow_redirects=False)
    client.cookies.set("yilian_session", tokens.issue(username))
    return client


def test_it_shows_the_earlier_result_on_the_order_form_and_orders_only_with_a_reason(region, http) -> None:  # type: ignore[no-untyped-def]
    result_elsewhere(region, 10)
    township = browser_of(http, "township")
    form = {"patient": region.patients["wang"], "modality": "lab", "item_code": "LAB-LFT", "decision": "order"}
    r = township.post("/diagnostics/orders/new", data=form)
    assert r.status_code == 409
    assert 'data-testid="recognised-result"' in r.text and "肝功能正常" in r.text
    assert 'data-testid="repeat-reason"' in r.text

    r = township.post("/diagnostics/orders/new", data={**form, "repeat_reason": "disease_changed"})
    assert r.status_code == 422 and "patient_informed" in r.text and "肝功能正常" in r.text

    r = township.post(
        "/diagnostics/orders/new", data={**form, "repeat_reason": "disease_changed", "patient_informed": "1"}
    )
    assert r.status_code == 303
    order_page = township.get(r.headers["location"])
    assert order_page.status_code == 200 and "病情变化" in order_page.text

    r = township.post("/diagnostics/orders/new", data={**form, "decision": "reuse"})
    assert r.status_code == 303 and "reused=1" in r.headers["location"]
    recognition = township.get("/diagnostics/recognition")
    assert recognition.status_code == 200
    assert '<div class="n" data-testid="tests-avoided">1</div>' in recognition.text


def test_it_marks_the_field_when_the_order_form_is_wrong(region, http) -> None:  # type: ignore[no-untyped-def]
    village = browser_of(http, "village")
    r = village.post(
        "/diagnostics/orders/new", data={"patient": "Patient/ghost", "modality": "ecg", "item_code": "ECG-12"}
    )
    assert r.status_code == 404 and "<code>patient</code>" in r.text
    r = village.post("/diagnostics/orders/new", data={"patient": region.patients["li"], "modality": "xray"})
    assert r.status_code == 422 and "<code>modality</code>" in r.text


def test_it_refuses_a_bad_upload_on_the_order_page_and_keeps_nothing(region, http) -> None:  # type: ignore[no-untyped-def]
    village = browser_of(http, "village")
    r = village.post(
        "/diagnostics/orders/new", data={"patient": region.patients["li"], "modality": "ecg", "item_code": "ECG-12"}
    )
    order_page = r.headers["location"]
    files = {"file": ("ecg.pdf", b"MZ\x90\x00 not a tracing", "application/pdf")}
    r = village.post(f"{order_page}/upload", files=files, data={"heart_rate": "72"})
    assert r.status_code == 422 and "<code>file</code>" in r.text and "PDF" in r.text
    r = village.post(
        f"{order_page}/upload", files={"file": ("ecg.pdf", b"%PDF-1.4", "application/pdf")}, data={"qtc": "long"}
    )
    assert r.status_code == 422 and "measurements.qtc" in r.text
    assert "ecg.pdf" not in village.get(order_page).text  # nothing was kept


def test_it_opens_every_diagnostics_page_for_the_people_who_use_them(region, http) -> None:  # type: ignore[no-untyped-def]
    village, reader = browser_of(http, "village"), browser_of(http, "reader")
    r = village.post(
        "/diagnostics/orders/new",
        data={"patient": region.patients["li"], "modality": "ecg", "item_code": "ECG-12", "priority": "urgent"},
    )
    order_url = r.headers["location"]
    r = village.post(f"{order_url}/upload", files={"file": ("ecg.exe", b"MZ\x90", "application/octet-stream")})
    assert r.status_code == 422 and "<code>file</code>" in r.text
    r = village.post(
        f"{order_url}/upload",
        files={"file": ("ecg.pdf", b"%PDF-1.4 ...", "application/pdf")},
        data={"heart_rate": "160"},
    )
    assert r.status_code == 303
    home = reader.get("/")
    assert 'data-testid="worklist-link"' in home.text
    for path in (
        "/diagnostics",
        "/diagnostics/worklist",
        "/diagnostics/turnaround",
        "/diagnostics/recognition",
        "/diagnostics/consultations",
        "/diagnostics/orders/new",
        order_url,
    ):
        assert reader.get(path).status_code == 200, path
    r = reader.post(f"{order_url}/report", data={"conclusion": "窦性心动过速", "findings": "心率160次/分"})
    assert r.status_code == 303
    home = village.get("/")
    assert 'data-testid="critical-alerts"' in home.text and "Heart rate 160 /min &gt; 150" in home.text
    official = browser_of(http, "official")
    for path in ("/diagnostics", "/diagnostics/turnaround", "/diagnostics/recognition"):
        assert official.get(path).status_code == 200, path
    r = village.post(
        "/diagnostics/consultations",
        data={"patient": region.patients["li"], "specialty": "心内科", "question": "心动过速原因？"},
    )
    assert r.status_code == 303
    consult_url = r.headers["location"]
    coordinator = browser_of(http, "coordinator")
    assert 'data-testid="consultation-waiting"' in coordinator.get("/").text
    r = coordinator.post(f"{consult_url}/schedule", data={"experts": "expert", "scheduled_at": "2026-11-26T10:00"})
    assert r.status_code == 303
    assert "待填写会诊意见" in browser_of(http, "expert").get("/").text
    r = browser_of(http, "expert").post(f"{consult_url}/opinion", data={"diagnosis": "阵发性室上速", "advice": "上转"})
    assert r.status_code == 303
    page = village.get(consult_url)
    assert page.status_code == 200 and "阵发性室上速" in page.text
