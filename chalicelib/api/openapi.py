"""The published contract (`GET /openapi.json`): OpenAPI 3.1, built from `contract.OPERATIONS`.

Bodies and query strings come from the pydantic models the routes validate with (pydantic
writes JSON Schema 2020-12, which is OpenAPI 3.1's dialect), answers from
`chalicelib.api.responses`. Every error status answers the one error shape; a 503 also
says Retry-After. Built once per container: the document only changes with the code.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from chalice.app import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api import responses
from chalicelib.api.contract import OPERATIONS, PATH_PARAMETERS, Auth, Operation
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import RETRY_AFTER_SECONDS

VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{(\w+)\}")

_REASONS = {
    400: "Malformed request (bad JSON, a bad cursor)",
    401: "Missing or unknown credentials",
    403: "Not allowed for these credentials",
    404: "Not found",
    409: "Conflict with the current state; retry",
    410: "The link has expired or was used up",
    413: "Body or cover too large",
    415: "Content-Type not accepted by this operation",
    422: "A field, parameter or body failed validation (each is named in `fields`)",
    429: "Too many requests; retry later",
    500: "Unexpected error (logged)",
    503: "A backing service is unavailable; retry after Retry-After seconds",
}
_SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    Auth.PUBLIC: [],
    Auth.API_KEY: [{"apiKey": []}],
    Auth.ADMIN_KEY: [{"apiKey": []}],
    Auth.SESSION: [{"dashboardSession": []}],
    Auth.SESSION_ACTION: [{"dashboardSession": [], "csrfToken": []}],
}
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer <key>` (admin keys for /tasks and /queues)",
    },
    "dashboardSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "dashboard_session",
        "description": "The dashboard's session cookie, set by `POST /dashboard/login` (admin keys only)",
    },
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "Every dashboard POST sends the session's `csrf_token` (from login or /dashboard/api/session)",
    },
}


def _models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"Error": responses.Error}
    for op in OPERATIONS:
        for model in (op.body, op.answer):
            if model is not None:
                found.setdefault(model.__name__, model)
    return list(found.values())


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or text: `X | None` becomes X (keeping its description)."""
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options:
        return schema
    rest = [o for o in options if o != {"type": "null"}]
    inner = rest[0] if len(rest) == 1 else {"anyOf": rest}
    kept = {k: v for k, v in schema.items() if k not in ("anyOf", "default", "title")}
    return {**inner, **kept}


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = _without_null({k: v for k, v in prop.items() if k != "title"})
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        params.append(param)
    return params


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(status: int, page: bool) -> dict[str, Any]:
    content = _json({"$ref": _REF.format(model="Error")})
    if page:
        content["text/html"] = {"schema": {"type": "string"}}
    answer: dict[str, Any] = {"description": _REASONS[status], "content": content}
    if status == 503:
        answer["headers"] = {
            "Retry-After": {
                "description": f"seconds to wait ({RETRY_AFTER_SECONDS})",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return answer


def error_statuses(op: Operation) -> list[int]:
    """The error statuses `op` may answer: those of its kind, and its own."""
    statuses = {500, 503, *op.errors}
    if _PATH_PARAM.search(op.path):
        statuses |= {404, 422}
    if op.query is not None:
        statuses |= {400, 422}
    if op.body is not None or op.body_types != ("application/json",):
        statuses |= {400, 413, 415, 422}
    if op.auth is not Auth.PUBLIC:
        statuses |= {401, 403}
    return sorted(statuses)


def _operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        params += _query(op.query)
    success: dict[str, Any] = {"description": op.summary}
    if op.answer is not None:
        success["content"] = _json({"$ref": _REF.format(model=op.answer.__name__)})
    elif op.media:
        success["content"] = {media: {"schema": {"type": "string"}} for media in op.media}
    answers = {str(op.status): success, **{str(s): _error(s, op.link_page) for s in error_statuses(op)}}
    if op.redirects:
        location = {"required": True, "schema": {"type": "string"}}
        answers["308"] = {"description": "the same page at its canonical path", "headers": {"Location": location}}
    doc: dict[str, Any] = {
        "operationId": f"{op.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', op.path.lower()).strip('_')}",
        "summary": op.summary,
        "tags": [op.tag],
        "security": _SECURITY[op.auth],
        "responses": dict(sorted(answers.items())),
    }
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": _json({"$ref": _REF.format(model=op.body.__name__)})}
    elif op.body_types != ("application/json",):
        schema = {"type": "string", "format": "binary"}
        doc["requestBody"] = {"required": False, "content": {media: {"schema": schema} for media in op.body_types}}
    return doc


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route."""
    _, schemas = models_json_schema([(m, "validation") for m in _models()], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": get_settings().app_name,
            "version": VERSION,
            "description": "Books with covers, author subscriptions, task records and queues. "
            'Every 4xx/5xx answers {"error", "message", "fields"}.',
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}), "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def _body() -> str:
    return json.dumps(document(), ensure_ascii=False)


def response() -> Response:
    """`GET /openapi.json`: public, cacheable for an hour (it changes only with a deploy)."""
    return Response(
        body=_body(),
        status_code=200,
        headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=3600"},
    )
