"""The referral pages as a person sees them (real server, Chinese by default)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdf

from yilian.db import unit_of_work
from yilian.events.service import deliver_pending

from .conftest import Net, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_it_sends_a_referral_from_the_form_and_shows_it_to_the_referral_centre_with_its_next_steps(net: Net) -> None:
    patient = make_patient("赵桂英")
    with net.client("village") as c:
        form = c.get("/referrals/new", params={"patient": patient})
        assert form.status_code == 200 and "发起转诊" in form.text
        sent = c.post(
            "/referrals/new",
            data={
                "patient": patient,
                "diagnosis_codes": "I10",
                "systolic": "186",
                "diastolic": "114",
                "reason": "首诊血压高",
                "consent": "on",
            },
        )
        assert sent.status_code == 303
        url = sent.headers["location"]
        page = c.get(url)
    assert "已提交" in page.text and "襄汾县人民医院" in page.text and "首诊血压 ≥180/110 mmHg" in page.text
    with net.client("coordinator") as c:
        worklist = c.get("/referrals", params={"queue": "to_triage"})
        assert url in worklist.text and "待分诊" in worklist.text
        mine = c.get(url)
        assert 'data-testid="do-triage"' in mine.text and 'data-testid="do-cancel"' in mine.text
        home = c.get("/")
        assert 'data-testid="referral-queues"' in home.text
        slip = c.get(url + "/slip")
        assert slip.status_code == 200 and "<svg" in slip.text and "双向转诊单" in slip.text
        moved = c.post(url + "/act", data={"action": "triage"})
        assert moved.status_code == 303 and "已分诊" in c.get(url).text


def test_it_marks_the_field_when_the_form_is_incomplete(net: Net) -> None:
    patient = make_patient()
    with net.client("village") as c:
        res = c.post("/referrals/new", data={"patient": patient, "reason": "x"})
    assert res.status_code == 422 and "consent" in res.text


def test_it_prints_the_referral_slip_as_a_pdf_with_the_patients_name_in_chinese_and_a_qr_code(net: Net) -> None:
    patient = make_patient("欧阳秀兰")
    with net.client("village") as c:
        sent = c.post(
            "/api/v1/referrals",
            json={"patient": patient, "diagnosis_codes": ["I10"], "systolic": 186, "diastolic": 114,
                  "reason": "首诊血压 186/114 mmHg", "consent": True},
        )  # fmt: skip
        rid = sent.json()["id"]
        page = c.get(f"/referrals/{rid}")
        assert f'href="/referrals/{rid}/slip.pdf"' in page.text
        res = c.get(f"/referrals/{rid}/slip.pdf")
    assert res.status_code == 200 and res.headers["content-type"] == "application/pdf"
    assert res.content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(res.content))
    text = "".join(page.extract_text() for page in reader.pages)
    assert "欧阳秀兰" in text and "双向转诊单" in text
    assert rid in text and "张家村卫生室" in text and "I10" in text
    qr = [op for op in reader.pages[0].get_contents().get_data().split(b"\n") if op.endswith(b" re f*")]  # type: ignore[union-attr]
    assert len(qr) > 100  # the QR code is drawn as modules (small rectangles), not left out
    with net.client("official") as c:
        assert c.get(f"/referrals/{rid}/slip.pdf").status_code == 403  # not a party: no slip either


def test_a_department_publishes_beds_and_sees_the_patient_arriving_today_and_the_sender_sees_the_reply(
    net: Net,
) -> None:
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).strftime("%Y-%m-%dT09:00")
    with net.client("county") as c:
        page = c.get("/referrals/slots")
        assert page.status_code == 200 and "号源与床位" in page.text and "心血管内科" in page.text
        published = c.post(
            "/referrals/slots",
            data={"department": "心血管内科", "kind": "bed", "start": tomorrow, "count": "3", "minutes": "1440"},
        )
        assert published.status_code == 303
        page = c.get("/referrals/slots")
        row = next(line for line in page.text.splitlines() if "<td>心血管内科</td>" in line)
        assert "<td>3</td>" in row  # three beds free
        wrong = c.post("/referrals/slots", data={"department": "骨科", "kind": "bed", "start": tomorrow, "count": "1"})
        assert wrong.status_code == 422 and "department" in wrong.text
        wrong = c.post("/referrals/slots", data={"department": "心血管内科", "start": tomorrow, "count": "many"})
        assert wrong.status_code == 422 and "count" in wrong.text

    patient = make_patient("李秀珍")
    with net.client("village") as c:
        rid = c.post(
            "/api/v1/referrals",
            json={"patient": patient, "diagnosis_codes": ["I10"], "systolic": 186, "diastolic": 114,
                  "reason": "血压高", "consent": True},
        ).json()["id"]  # fmt: skip
    with net.client("coordinator") as c:
        c.post(f"/api/v1/referrals/{rid}/triage", json={})
        c.post(f"/api/v1/referrals/{rid}/offer", json={})
    with net.client("county") as c:
        c.post(f"/api/v1/referrals/{rid}/accept", json={})
        booked = c.post(f"/api/v1/referrals/{rid}/book", json={"start": datetime.now(UTC).isoformat()})
        assert booked.status_code == 200, booked.text
        today = c.get("/api/v1/referrals", params={"queue": "arriving_today"}).json()["items"]
        assert rid in [x["id"] for x in today]
        worklist = c.get("/referrals", params={"queue": "arriving_today"})
        assert "今日到院" in worklist.text and f"/referrals/{rid}" in worklist.text

    with unit_of_work() as session:
        deliver_pending(session, limit=500)  # what the outbox worker of `yilian serve` does
    with net.client("village") as c:
        mine = c.get("/referrals")
    news = mine.text.split('data-testid="inbox"', 1)[1]
    assert f"/referrals/{rid}" in news and "已预约" in news


def test_an_official_sees_monthly_referral_slips_per_facility_and_no_patients(net: Net) -> None:
    patient = make_patient("周文华")
    with net.client("village") as c:
        sent = c.post(
            "/api/v1/referrals",
            json={"patient": patient, "diagnosis_codes": ["I10"], "reason": "复查", "consent": True},
        )
        assert sent.status_code == 201
    with net.client("official") as c:
        assert c.get("/referrals").headers.get("location") == "/referrals/stats"
        page = c.get("/referrals/stats")
        assert page.status_code == 200 and "转诊统计" in page.text
        row = next(line for line in page.text.splitlines() if "张家村卫生室" in line)
        assert int(row.split('data-testid="up">', 1)[1].split("<", 1)[0]) >= 1
        assert "周文华" not in page.text
        assert c.get("/referrals/stats", params={"division": "1401"}).status_code == 403  # Taiyuan is not theirs
    with net.client("village") as c:
        assert c.get("/referrals/stats").status_code == 403
