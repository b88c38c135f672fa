"""With YILIAN_DICOMWEB_URL set, studies come from a PACS by QIDO-RS: a real HTTP server on loopback stands in for
Orthanc's DICOMweb plug-in (same URL layout, same DICOM JSON)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

STUDY = "1.2.826.0.1.3680043.8.498.10374"


def dicom_json(uid: str, patient: str) -> dict:  # type: ignore[type-arg]
    return {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00080020": {"vr": "DA", "Value": ["20261120"]},
        "00080050": {"vr": "SH", "Value": ["A1001"]},
        "00080061": {"vr": "CS", "Value": ["CT"]},
        "00081030": {"vr": "LO", "Value": ["头颅CT平扫"]},
        "00100020": {"vr": "LO", "Value": [patient]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "WANG^JIANGUO"}]},
        "00201206": {"vr": "IS", "Value": [2]},
        "00201208": {"vr": "IS", "Value": [180]},
    }


class Pacs:
    def __init__(self, patient: str) -> None:
        self.requests: list[str] = []
        pacs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pacs.requests.append(self.path)
                url = urlparse(self.path)
                if url.path != "/dicom-web/studies":
                    self.send_response(404)
                    self.end_headers()
                    return
                q = parse_qs(url.query)
                studies = [dicom_json(STUDY, patient)]
                if "StudyInstanceUID" in q:
                    studies = [s for s in studies if s["0020000D"]["Value"][0] == q["StudyInstanceUID"][0]]
                if "PatientID" in q:
                    studies = [s for s in studies if s["00100020"]["Value"][0] == q["PatientID"][0]]
                body = json.dumps(studies).encode()
                self.send_response(200 if studies else 204)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body) if studies else 0))
                self.end_headers()
                if studies:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def pacs(region, monkeypatch) -> Iterator[Pacs]:  # type: ignore[no-untyped-def]
    server = Pacs(region.patients["wang"].removeprefix("Patient/"))
    monkeypatch.setenv("YILIAN_DICOMWEB_URL", server.url)
    yield server
    server.server.shutdown()


def order_ct(api, region) -> str:  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/diagnostics/orders", json={"patient": region.patients["wang"], "modality": "imaging",
                                                       "item_code": "CT-HEAD", "priority": "urgent"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_it_finds_the_patients_studies_in_the_pacs_and_attaches_one_with_its_wado_link(region, as_user, pacs) -> None:  # type: ignore[no-untyped-def]
    township, reader = as_user("township"), as_user("reader")
    order_id = order_ct(township, region)
    found = township.get(f"/api/v1/diagnostics/orders/{order_id}/pacs-studies").json()
    assert [(s["study_uid"], s["modalities"], s["instances"]) for s in found] == [(STUDY, ["CT"], 180)]
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/study", json={"study_uid": STUDY})
    assert r.status_code == 201, r.text
    assert r.json()["wado_url"] == f"{pacs.url}/studies/{STUDY}" and r.json()["description"] == "头颅CT平扫"
    assert reader.get("/api/v1/diagnostics/worklist").json()[0]["state"] == "received"
    from yilian.db import read_session
    from yilian.fhir import store

    with read_session() as session:
        studies = store.search(session, "ImagingStudy", [("basedon", f"ServiceRequest/{order_id}")]).resources
    assert studies[0]["identifier"][0]["value"] == f"urn:oid:{STUDY}"


def test_it_says_so_when_the_pacs_has_no_such_study_or_does_not_answer(region, as_user, pacs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    township = as_user("township")
    order_id = order_ct(township, region)
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/study", json={"study_uid": "1.2.3.4"})
    assert r.status_code == 404 and r.json()["field"] == "study_uid"
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/study", json={"study_uid": "not-a-uid"})
    assert r.status_code == 422 and r.json()["field"] == "study_uid"
    monkeypatch.setenv("YILIAN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")  # discard port: nobody listens
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/study", json={"study_uid": STUDY})
    assert r.status_code == 503 and r.json()["field"] == "study_uid"
    assert township.get(f"/api/v1/diagnostics/orders/{order_id}").json()["state"] == "ordered"
