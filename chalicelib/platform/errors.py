"""The errors services raise, with no HTTP in them: `api/http.py` alone maps each to a status.

A service says what went wrong (not found, a conflict, an outage); the API, the HTML pages of
mail links and a future framework each decide how to answer it.
"""

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


class DomainError(Exception):
    """A refusal or failure a caller is told about: a code, a message and the fields at fault."""

    code = "BadRequest"

    def __init__(self, message: str, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return error_body(self.code, self.message, self.fields)


class ValidationFailed(DomainError):
    code = "ValidationError"


class MalformedRequest(DomainError):
    code = "BadRequest"


class Unauthorized(DomainError):
    code = "Unauthorized"


class Forbidden(DomainError):
    code = "Forbidden"


class NotFound(DomainError):
    code = "NotFound"


class PayloadTooLarge(DomainError):
    code = "PayloadTooLarge"


class UnsupportedMediaType(DomainError):
    code = "UnsupportedMediaType"


class ServiceUnavailable(DomainError):
    """A backing service is down or busy: nothing was written, the same call may succeed later."""

    code = "ServiceUnavailable"


class InternalError(DomainError):
    code = "InternalServerError"


class Conflict(DomainError):
    code = "Conflict"


class Gone(DomainError):
    """It existed, and is no more (an expired or used link)."""

    code = "Gone"
