"""Errors the API turns into 4xx/5xx JSON responses."""

from __future__ import annotations

from typing import Any

# How long a client should wait after a 503: long enough for an SSM, DynamoDB or SQS hiccup to
# pass, short enough that an interactive client does not give up. API Gateway's gateway
# responses (devtools/infra.py) send the same value.
RETRY_AFTER_SECONDS = 5


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one error shape of every 4xx/5xx the API answers, whoever produces it.

    The routes, the authorizer, the local gateway and API Gateway's gateway responses all
    answer `{"error", "message", "fields"}`, so a client parses one shape.
    """
    return {"error": code, "message": message, "fields": list(fields or [])}


class ApiError(Exception):
    """An error with an HTTP status and a JSON body."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return error_body(self.code, self.message, self.fields)

    def headers(self) -> dict[str, str]:
        """Headers the status calls for (Retry-After on a 503, WWW-Authenticate on a 401)."""
        return {}


class ValidationFailed(ApiError):
    status, code = 422, "ValidationError"


class MalformedRequest(ApiError):
    status, code = 400, "BadRequest"


class Unauthorized(ApiError):
    status, code = 401, "Unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status, code = 403, "Forbidden"


class NotFound(ApiError):
    status, code = 404, "NotFound"


class PayloadTooLarge(ApiError):
    status, code = 413, "PayloadTooLarge"


class UnsupportedMediaType(ApiError):
    status, code = 415, "UnsupportedMediaType"


class ServiceUnavailable(ApiError):
    status, code = 503, "ServiceUnavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class InternalError(ApiError):
    status, code = 500, "InternalServerError"


class Conflict(ApiError):
    status, code = 409, "Conflict"
