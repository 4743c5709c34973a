"""Glue between Chalice requests and the services: principals, bodies, errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Response
from chalice.app import Request
from pynamodb.exceptions import PynamoDBException

from chalicelib.auth import Principal
from chalicelib.config import get_settings
from chalicelib.errors import ApiError, Forbidden, ServiceUnavailable, Unauthorized
from chalicelib.observability import logger
from chalicelib.schemas import parse_json
from chalicelib.tasks.dispatch import DispatchError

JSON_HEADERS = {"Content-Type": "application/json"}
_RETRYABLE = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalServerError",
    "RequestTimeout",
}


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=JSON_HEADERS)


def principal(request: Request, admin: bool = False) -> Principal:
    """The caller the authorizer let in; 403 for non-admins where admin is needed."""
    context = (request.context or {}).get("authorizer") or {}
    user = context.get("principalId")
    if not user:
        raise Unauthorized("missing credentials")
    is_admin = str(context.get("admin", "false")).lower() == "true"
    if admin and not is_admin:
        raise Forbidden("this route needs an admin key")
    return Principal(user, is_admin)


def body_json(request: Request) -> Any:
    """The JSON body, bounded by MAX_BODY_BYTES."""
    return parse_json(request.raw_body, get_settings().max_body_bytes)


def path_param(value: str) -> str:
    """A path parameter, URL-decoded once."""
    return unquote(value) if "%" in value else value


def json_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turn domain errors into JSON 4xx and AWS outages into 503, never a bare 500."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except ApiError as exc:
            return json_response(exc.body(), exc.status)
        except DispatchError as exc:
            logger.error("task dispatch failed", extra={"error": str(exc)})
            return _unavailable(str(exc))
        except (ClientError, BotoCoreError, PynamoDBException) as exc:
            if not _is_outage(exc):
                raise
            logger.exception("AWS call failed", extra={"error": str(exc)})
            return _unavailable("a backing service is unavailable; try again")

    return wrapper


def _unavailable(message: str) -> Response:
    return json_response(ServiceUnavailable(message).body(), 503)


def _is_outage(exc: Exception) -> bool:
    if isinstance(exc, BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "") in _RETRYABLE
    if isinstance(exc, PynamoDBException):
        cause = exc.cause
        if exc.cause_response_code in _RETRYABLE:
            return True
        return isinstance(cause, BotoCoreError | ClientError) and _is_outage(cause)
    return False
