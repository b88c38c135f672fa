"""One error hierarchy. Domains raise these; the edges (JSON API, FHIR, HTML) shape them once."""

from __future__ import annotations


class YilianError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class Invalid(YilianError):
    status, code = 422, "invalid"


class BadRequest(YilianError):
    status, code = 400, "bad_request"


class Unauthorized(YilianError):
    status, code = 401, "unauthorized"


class Forbidden(YilianError):
    status, code = 403, "forbidden"


class NotFound(YilianError):
    status, code = 404, "not_found"


class Conflict(YilianError):
    status, code = 409, "conflict"


class PreconditionFailed(YilianError):
    status, code = 412, "precondition_failed"


class Unavailable(YilianError):
    status, code = 503, "unavailable"
