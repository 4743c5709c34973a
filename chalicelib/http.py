"""Glue between Chalice requests and the services: principals, bodies, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Response
from chalice.app import Request

from chalicelib.auth import Principal
from chalicelib.config import get_settings
from chalicelib.errors import ApiError, Forbidden, ServiceUnavailable, Unauthorized
from chalicelib.observability import logger
from chalicelib.schemas import parse_json
from chalicelib.tasks.dispatch import DispatchError

JSON_HEADERS = {"Content-Type": "application/json"}
_RETRYABLE = {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
              "ServiceUnavailable", "InternalError", "InternalServerError", "RequestTimeout"}


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


def error_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Turn domain errors into JSON 4xx and AWS outages into 503, never a bare 500."""
    try:
        return get_response(event)
    except ApiError as exc:
        return json_response(exc.body(), exc.status)
    except DispatchError as exc:
        logger.error("task dispatch failed", extra={"error": str(exc)})
        return json_response(ServiceUnavailable(str(exc)).body(), 503)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
        logger.exception("AWS call failed", extra={"code": code})
        if isinstance(exc, BotoCoreError) or code in _RETRYABLE:
            return json_response(ServiceUnavailable("a backing service is unavailable; try again").body(), 503)
        raise
