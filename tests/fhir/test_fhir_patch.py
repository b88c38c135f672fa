"""PATCH: JSON Patch and FHIRPath Patch, with If-Match, validation of the result and errors naming the operation."""

from __future__ import annotations

import base64
import json
from typing import Any

from .conftest import FhirClient

JSON_PATCH = "application/json-patch+json"


def _patch(client: FhirClient, url: str, body: Any, ctype: str = JSON_PATCH, **headers: str) -> Any:
    return client.http.patch(
        url,
        content=json.dumps(body, ensure_ascii=False).encode(),
        headers={**client.headers, "Content-Type": ctype, **headers},
    )


def _issue(r: Any) -> dict[str, Any]:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return dict(body["issue"][0])


def test_it_patches_a_patient_with_json_patch_and_keeps_the_history(doctor: FhirClient, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    ops = [
        {"op": "test", "path": "/gender", "value": "male"},
        {"op": "replace", "path": "/name/0/family", "value": "李"},
        {"op": "add", "path": "/telecom", "value": [{"system": "phone", "value": "13912345678"}]},
    ]
    r = _patch(doctor, f"/fhir/Patient/{pid}", ops, **{"If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == 'W/"2"'
    body = r.json()
    assert body["name"][0]["family"] == "李" and body["telecom"][0]["value"] == "13912345678"
    assert body["birthDate"] == "1949-12-31"  # untouched elements stay
    # The search index follows the patch; the first version is still there.
    found = doctor.get("/fhir/Patient", params={"family": "李"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [pid]
    assert doctor.get(f"/fhir/Patient/{pid}/_history/1").json()["name"][0]["family"] == "张"


def test_it_refuses_a_patch_on_a_stale_version_with_412(doctor: FhirClient, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    assert doctor.put(f"/fhir/Patient/{pid}", json={**new_patient(), "id": pid, "gender": "female"}).status_code == 200
    r = _patch(doctor, f"/fhir/Patient/{pid}", [{"op": "remove", "path": "/birthDate"}], **{"If-Match": 'W/"1"'})
    assert r.status_code == 412
    assert _issue(r)["expression"] == ["If-Match"]
    assert doctor.get(f"/fhir/Patient/{pid}").json()["birthDate"] == "1949-12-31"


def test_it_names_the_failing_operation_and_element(doctor: FhirClient, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    url = f"/fhir/Patient/{pid}"
    missing = _patch(doctor, url, [{"op": "replace", "path": "/name/0/family", "value": "王"},
                                   {"op": "replace", "path": "/name/3/family", "value": "王"}])  # fmt: skip
    assert missing.status_code == 422
    issue = _issue(missing)
    assert issue["expression"] == ["Patient.name[3]"] and "operation 1" in issue["diagnostics"]

    failed_test = _patch(doctor, url, [{"op": "test", "path": "/gender", "value": "female"}])
    assert failed_test.status_code == 409 and _issue(failed_test)["expression"] == ["Patient.gender"]

    invalid_result = _patch(doctor, url, [{"op": "replace", "path": "/birthDate", "value": "31/12/1949"}])
    assert invalid_result.status_code in (400, 422)
    assert _issue(invalid_result)["expression"] == ["Patient.birthDate"]

    unknown_element = _patch(doctor, url, [{"op": "add", "path": "/favouriteColour", "value": "red"}])
    assert unknown_element.status_code in (400, 422)
    assert "favouriteColour" in _issue(unknown_element)["expression"][0]

    bad_op = _patch(doctor, url, [{"op": "frobnicate", "path": "/gender"}])
    assert bad_op.status_code == 400 and _issue(bad_op)["expression"] == ["PATCH[0].op"]

    not_a_list = _patch(doctor, url, {"op": "remove", "path": "/gender"})
    assert not_a_list.status_code == 400 and _issue(not_a_list)["expression"] == ["PATCH"]

    id_change = _patch(doctor, url, [{"op": "replace", "path": "/id", "value": "other"}])
    assert id_change.status_code == 400 and _issue(id_change)["expression"] == ["Patient.id"]

    wrong_type = _patch(doctor, url, [{"op": "remove", "path": "/gender"}], ctype="text/plain")
    assert wrong_type.status_code == 400 and _issue(wrong_type)["expression"] == ["Content-Type"]

    broken_json = doctor.http.patch(url, content=b"[{", headers={**doctor.headers, "Content-Type": JSON_PATCH})
    assert broken_json.status_code == 400 and _issue(broken_json)["severity"] == "error"
    # None of this changed the resource.
    assert doctor.get(url).json()["meta"]["versionId"] == "1"


def test_it_answers_404_and_410_for_patches_of_missing_and_deleted_resources(
    doctor: FhirClient, new_patient: Any
) -> None:
    ops = [{"op": "remove", "path": "/gender"}]
    assert _patch(doctor, "/fhir/Patient/nobody", ops).status_code == 404
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    assert doctor.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert _patch(doctor, f"/fhir/Patient/{pid}", ops).status_code == 410
    assert _patch(doctor, "/fhir/Spaceship/1", ops).status_code == 404


def test_it_applies_a_fhirpath_patch(doctor: FhirClient, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "Patient.birthDate"},
                {"name": "value", "valueDate": "1950-01-01"}]},
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "add"},
                {"name": "path", "valueString": "Patient"},
                {"name": "name", "valueString": "telecom"},
                {"name": "value", "valueContactPoint": {"system": "phone", "value": "13800000000"}}]},
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "delete"},
                {"name": "path", "valueString": "Patient.gender"}]},
        ],
    }  # fmt: skip
    r = _patch(doctor, f"/fhir/Patient/{pid}", parameters, ctype="application/fhir+json")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["birthDate"] == "1950-01-01" and "gender" not in body
    assert body["telecom"] == [{"system": "phone", "value": "13800000000"}]

    unsupported = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "delete"},
        {"name": "path", "valueString": "Patient.name.where(use='old')"}]}]}  # fmt: skip
    r = _patch(doctor, f"/fhir/Patient/{pid}", unsupported, ctype="application/fhir+json")
    assert r.status_code == 400 and _issue(r)["expression"] == ["Parameters.parameter[0].path"]


def test_it_patches_inside_a_transaction_and_rolls_the_patch_back_with_it(doctor: FhirClient, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "female"}]
    binary = {"resourceType": "Binary", "contentType": JSON_PATCH,
              "data": base64.b64encode(json.dumps(ops).encode()).decode()}  # fmt: skip
    good = {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{pid}"}}]}  # fmt: skip
    r = doctor.post("/fhir", json=good)
    assert r.status_code == 200, r.text
    assert doctor.get(f"/fhir/Patient/{pid}").json()["gender"] == "female"

    back = [{"op": "replace", "path": "/gender", "value": "male"}]
    binary["data"] = base64.b64encode(json.dumps(back).encode()).decode()
    failing = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{pid}"}},
        {"resource": new_patient(birthDate="never"), "request": {"method": "POST", "url": "Patient"}}]}  # fmt: skip
    r = doctor.post("/fhir", json=failing)
    assert r.status_code in (400, 422)
    assert doctor.get(f"/fhir/Patient/{pid}").json()["gender"] == "female"
