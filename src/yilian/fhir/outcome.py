"""OperationOutcome: how every FHIR error is said."""

from __future__ import annotations

from typing import Any

# YilianError.code -> FHIR issue-type code (http://hl7.org/fhir/issue-type)
ISSUE_CODES = {
    "invalid": "invalid",
    "bad_request": "invalid",
    "unauthorized": "login",
    "forbidden": "forbidden",
    "not_found": "not-found",
    "conflict": "conflict",
    "precondition_failed": "conflict",
    "unavailable": "transient",
    "not_supported": "not-supported",
    "too_costly": "too-costly",
}


def outcome(
    diagnostics: str,
    *,
    code: str = "invalid",
    severity: str = "error",
    expression: str | list[str] | None = None,
    issues: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": ISSUE_CODES.get(code, code), "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression] if isinstance(expression, str) else list(expression)
    return {"resourceType": "OperationOutcome", "issue": [issue, *(issues or [])]}
