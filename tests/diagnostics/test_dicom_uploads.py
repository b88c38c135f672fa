"""DICOM Study Instance UIDs: an uploaded DICOM file keeps its own UID; malformed UIDs are refused naming the field."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from yilian.db import read_session
from yilian.diagnostics import rules
from yilian.diagnostics.models import DiagnosticStudy
from yilian.errors import Invalid
from yilian.fhir import store


def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"  # UIDs are padded with NUL to an even length
    return group.to_bytes(2, "little") + elem.to_bytes(2, "little") + vr + len(value).to_bytes(2, "little") + value


def dicom_file(study_uid: str) -> bytes:
    """A DICOM Part 10 file as a CT would send it: preamble, DICM, file meta (explicit VR little endian), dataset."""
    meta = element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1")
    dataset = element(0x0008, 0x0060, b"CS", b"CT") + element(0x0020, 0x000D, b"UI", study_uid.encode())
    return b"\x00" * 128 + b"DICM" + meta + dataset + element(0x0020, 0x000E, b"UI", b"1.2.3.4")


def test_it_reads_the_study_uid_of_a_dicom_file_and_checks_uid_syntax() -> None:
    assert rules.dicom_study_uid(dicom_file("1.2.826.0.1.3680043.8.498.1")) == "1.2.826.0.1.3680043.8.498.1"
    assert rules.dicom_study_uid(b"%PDF-1.4") is None
    assert rules.check_uid("1.2.840.10008.0", field="study_uid") == "1.2.840.10008.0"
    for bad, why in (("1.2.03", "leading zero"), ("1..2", "empty component"), ("1.2.a", "digits"), ("1." * 40, "64")):
        with pytest.raises(Invalid, match=why) as e:
            rules.check_uid(bad, field="study_uid")
        assert e.value.field == "study_uid"


def order_ct(api, patient: str) -> str:  # type: ignore[no-untyped-def]
    body = {"patient": patient, "modality": "imaging", "item_code": "CT-HEAD", "clinical_question": "头痛"}
    r = api.post("/api/v1/diagnostics/orders", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_an_uploaded_ct_keeps_its_own_study_uid_and_a_bad_one_is_refused_whole(region, as_user) -> None:  # type: ignore[no-untyped-def]
    township = as_user("township")
    order_id = order_ct(township, region.patients["wang"])
    files = {"file": ("ct.dcm", dicom_file("1.2.0345.6"), "application/dicom")}
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/upload", files=files)
    assert r.status_code == 422 and r.json()["field"] == "file" and "leading zero" in r.json()["message"]
    r = township.post(
        f"/api/v1/diagnostics/orders/{order_id}/study", json={"study_uid": "1.2.0345.6", "measurements": {}}
    )
    assert r.status_code == 422 and r.json()["field"] == "study_uid"
    with read_session() as session:
        assert session.scalar(select(func.count()).select_from(DiagnosticStudy)) == 0

    files = {"file": ("ct.dcm", dicom_file("1.2.826.0.1.3680043.8.498.7"), "application/dicom")}
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/upload", files=files)
    assert r.status_code == 201 and r.json()["study_uid"] == "1.2.826.0.1.3680043.8.498.7"
    with read_session() as session:
        study = store.read(session, "ImagingStudy", r.json()["id"])
    assert study["identifier"][0]["value"] == "urn:oid:1.2.826.0.1.3680043.8.498.7"
