"""Chalice's own error answers, rewritten into the API's one error shape.

Chalice answers some requests before any view runs (415 from a route's `content_types`,
405, 400 for a binary response without a matching Accept) and turns unhandled view
exceptions into 500, all as `{"Code", "Message"}`. That happens inside the Lambda, so
API Gateway's gateway responses never see it: an HTTP middleware is the one place that
makes these answers `{"error", "message", "fields"}` both deployed and locally.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Request, Response

from chalicelib.platform.errors import error_body

_JSON = {"Content-Type": "application/json"}


def install(app: Chalice) -> None:
    """Register the rewriting middleware on `app` (for every HTTP route)."""

    def one_error_shape(request: Request, get_response: Callable[[Request], Response]) -> Response:
        response = get_response(request)
        if not isinstance(response, Response) or response.status_code < 400 or not _is_chalice_error(response.body):
            return response
        return _reshaped(app, request, response)

    app.register_middleware(one_error_shape, "http")


def _is_chalice_error(body: Any) -> bool:
    return isinstance(body, dict) and set(body) == {"Code", "Message"}


def _reshaped(app: Chalice, request: Request, response: Response) -> Response:
    code, message = str(response.body["Code"]), str(response.body["Message"])
    headers = {**response.headers, **_JSON}
    if response.status_code == 415:
        body = _unsupported_media_type(app, request)
    elif response.status_code >= 500:
        body = error_body("InternalServerError", "Internal server error")
    else:
        body = error_body(code.removesuffix("Error") or code, message)
    return Response(body=json.dumps(body), status_code=response.status_code, headers=headers)


def _unsupported_media_type(app: Chalice, request: Request) -> dict[str, Any]:
    """415 naming what the route accepts (Chalice would name application/json when none was sent)."""
    resource = (request.context or {}).get("resourcePath", "")
    entry = app.routes.get(resource, {}).get(request.method)
    accepted = list(entry.content_types) if entry is not None else []
    sent = (request.headers.get("content-type") or "").strip()[:100]
    what = f"Content-Type {sent} is not accepted" if sent else "a Content-Type header is required"
    detail = f"{what}; send one of: {', '.join(accepted)}"
    return error_body(
        "UnsupportedMediaType", detail, [{"field": "Content-Type", "message": detail, "accepted": accepted}]
    )
