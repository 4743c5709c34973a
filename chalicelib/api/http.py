"""Glue between Chalice requests and the services: principals, bodies, errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Request, Response
from pynamodb.exceptions import PynamoDBException

from chalicelib.api.auth import Principal
from chalicelib.platform import aws_errors, errors, validation
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import DomainError, Forbidden, InternalError, ServiceUnavailable, Unauthorized
from chalicelib.platform.observability import logger
from chalicelib.platform.schemas import parse_json

JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(
        body=json.dumps(body, ensure_ascii=False), status_code=status, headers={**JSON_HEADERS, **(headers or {})}
    )


#: The one place a domain error becomes an HTTP status (issue 25: services raise no HTTP).
#: A subclass answers as its nearest listed class (tokens' BadToken as MalformedRequest).
HTTP_STATUS: dict[type[DomainError], int] = {
    errors.MalformedRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.InternalError: 500,
    errors.ServiceUnavailable: 503,
}


def status_of(error: DomainError) -> int:
    """The HTTP status `error` answers with (400 for a domain error of no listed kind)."""
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 400


def headers_of(error: DomainError) -> dict[str, str]:
    """Headers the status calls for: Retry-After on a 503, WWW-Authenticate on a 401."""
    if isinstance(error, ServiceUnavailable):
        return {"Retry-After": str(errors.RETRY_AFTER_SECONDS)}
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return {}


def error_response(error: DomainError) -> Response:
    """The one JSON error shape, with the status and headers of its kind."""
    return json_response(error.body(), status_of(error), headers_of(error))


def _current(request: Request | None) -> Request:
    # Chalice types `app.current_request` as optional; inside a route it is always set.
    if request is None:
        raise InternalError("no current request")
    return request


def principal(request: Request | None, admin: bool = False) -> Principal:
    """The caller the authorizer let in; 403 for non-admins where admin is needed."""
    context = (_current(request).context or {}).get("authorizer") or {}
    user = context.get("principalId")
    if not user:
        raise Unauthorized("missing credentials")
    is_admin = str(context.get("admin", "false")).lower() == "true"
    if admin and not is_admin:
        raise Forbidden("this route needs an admin key")
    return Principal(user, is_admin)


def body_json(request: Request | None) -> Any:
    """The JSON body, bounded by MAX_BODY_BYTES and MAX_JSON_DEPTH."""
    raw = _current(request).raw_body
    return parse_json(raw.encode() if isinstance(raw, str) else raw, get_settings().max_body_bytes)


def raw_body(request: Request | None) -> bytes:
    """The body as bytes (Chalice gives str or bytes; b"" when there is none)."""
    raw = _current(request).raw_body
    return raw.encode() if isinstance(raw, str) else bytes(raw or b"")


def content_type(request: Request | None) -> str:
    """The media type of the body, without parameters, lower case ("" when absent)."""
    return str(_current(request).headers.get("content-type") or "").split(";")[0].strip().lower()


def query_params(request: Request | None) -> dict[str, str]:
    """The query parameters, each checked for control characters (422 naming it).

    A cursor is opaque: chalicelib.platform.pagination checks it whole (any bad cursor is a 400).
    """
    return {
        name: value if name == "cursor" else validation.clean_text(value, name)
        for name, value in (_current(request).query_params or {}).items()
    }


def path_param(value: str) -> str:
    """A path parameter, URL-decoded once (API Gateway's REST APIs pass them encoded)."""
    return unquote(value) if "%" in value else value


# Every path parameter is checked by json_errors, by its name, before the view runs, so no
# route can forget: ids that cannot exist are a 404 before any AWS call, hostile text a 422
# naming the parameter. Any other name gets the generic text check.
_PATH_CHECKS: dict[str, Callable[[str, str], str]] = {
    "book_id": validation.book_id,
    "task_id": validation.task_id,
    "name": validation.author,
    "email": validation.email,
}


def check_path_params(params: dict[str, Any]) -> None:
    """Raise a 404/422 for the first path parameter that fails its check (decoded, as the view sees it)."""
    for name, value in params.items():
        if isinstance(value, str):
            _PATH_CHECKS.get(name, validation.clean_text)(path_param(value), name)


def json_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Check path parameters, turn domain errors into JSON 4xx and AWS outages into 503 with
    Retry-After; anything unexpected is a logged 500 in the same shape, never a bare one."""
    return answer_errors(view, error_response)


def answer_errors(view: Callable[..., Response], render: Callable[[DomainError], Response]) -> Callable[..., Response]:
    """`json_errors` with another rendering of the error (the HTML pages of mail links)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            check_path_params(kwargs)
            return view(*args, **kwargs)
        except DomainError as exc:
            return render(exc)
        except (ClientError, BotoCoreError, PynamoDBException) as exc:
            logger.exception("AWS call failed", extra={"error": str(exc)})
            if not aws_errors.is_transient(exc):
                return render(InternalError("unexpected error; it has been logged"))
            return render(ServiceUnavailable("a backing service is unavailable; try again"))
        except Exception:  # noqa: BLE001 - the last line of defence: one JSON shape, logged
            logger.exception("unexpected error")
            return render(InternalError("unexpected error; it has been logged"))

    return wrapper
