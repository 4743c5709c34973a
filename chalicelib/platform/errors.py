"""Errors the API turns into 4xx/5xx JSON responses."""

from __future__ import annotations

from typing import Any

# How long a client should wait after a 503: long enough for an SSM, DynamoDB or SQS hiccup to
# pass, short enough that an interactive client does not give up. API Gateway's gateway
# responses (infra/gateway_responses.py) send the same value.
RETRY_AFTER_SECONDS = 5

# An error body is bounded whatever the input: a body of 120,000 unknown keys would otherwise
# list each one twice and pass Lambda's 6 MB response limit (a 502). At most this many fields
# are listed, each text cut to MAX_ERROR_TEXT characters, the message to MAX_ERROR_MESSAGE.
MAX_ERROR_FIELDS = 20
MAX_ERROR_TEXT = 200
MAX_ERROR_MESSAGE = 1000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one error shape of every 4xx/5xx the API answers, whoever produces it.

    The routes, the authorizer, the local gateway and API Gateway's gateway responses all
    answer `{"error", "message", "fields"}`, so a client parses one shape. It is bounded (a
    few KB): the first MAX_ERROR_FIELDS fields, and the message says how many were left out.
    """
    every = list(fields or [])
    shown = [
        {key: _cut(value, MAX_ERROR_TEXT) if isinstance(value, str) else value for key, value in field.items()}
        for field in every[:MAX_ERROR_FIELDS]
    ]
    left_out = len(every) - len(shown)
    suffix = f" ({left_out:,} more fields not listed)" if left_out else ""
    return {"error": code, "message": _cut(message, MAX_ERROR_MESSAGE - len(suffix)) + suffix, "fields": shown}


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
