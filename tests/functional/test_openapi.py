"""The published contract: `GET /openapi.json` documents every route, and nothing else, as valid OpenAPI 3.1.

The running API is checked against it by Schemathesis in tests/test_contract.py (`make test-contract`).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers import Api
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from chalicelib.api import openapi
from chalicelib.api.contract import OPERATIONS, PATH_PARAMETERS


def test_every_route_is_documented_and_nothing_else(app_module: Any) -> None:
    routes = {(method, path) for path, entries in app_module.app.routes.items() for method in entries}
    documented = [op.key for op in OPERATIONS]
    assert len(documented) == len(set(documented)), "an operation is declared twice"
    assert sorted(routes - set(documented)) == [], "routes missing from chalicelib/api/contract.py"
    assert sorted(set(documented) - routes) == [], "operations in the contract that no route serves"


def test_security_matches_each_routes_authorizer(app_module: Any) -> None:
    doc = openapi.document()
    for path, entries in app_module.app.routes.items():
        for method, entry in entries.items():
            security = doc["paths"][path][method.lower()]["security"]
            if entry.authorizer is not None:
                assert security == [{"apiKey": []}], f"{method} {path}"
            else:
                assert {"apiKey": []} not in security, f"{method} {path}"


@pytest.mark.unit
def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1")
    validate(doc, cls=OpenAPIV31SpecValidator)  # raises on the first error


@pytest.mark.unit
def test_every_error_answer_is_the_one_shape_and_503_says_retry_after() -> None:
    doc = openapi.document()
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "message", "fields"}
    assert error["additionalProperties"] is False
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            statuses = [int(s) for s in op["responses"]]
            assert 500 in statuses and 503 in statuses, f"{method} {path}"
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert op["responses"]["503"]["headers"]["Retry-After"]["required"] is True


@pytest.mark.unit
def test_bodies_and_parameters_come_from_the_request_models() -> None:
    from chalicelib.books.schemas import BookCreate

    doc = openapi.document()
    create = doc["paths"]["/books"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/BookCreate"}
    schema = doc["components"]["schemas"]["BookCreate"]
    assert set(schema["properties"]) == set(BookCreate.model_fields)
    assert schema["additionalProperties"] is False  # StrictModel: unknown keys are a 422
    listing = {p["name"]: p for p in doc["paths"]["/books"]["get"]["parameters"]}
    assert listing["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert set(listing) == {"author", "limit", "cursor"}
    book = {p["name"]: p for p in doc["paths"]["/books/{book_id}"]["get"]["parameters"]}
    assert book["book_id"]["in"] == "path" and book["book_id"]["schema"] == PATH_PARAMETERS["book_id"]
    cover = doc["paths"]["/books/{book_id}/cover"]["put"]["requestBody"]["content"]
    assert set(cover) == {"image/jpeg", "image/png", "image/webp"}


@pytest.mark.unit
def test_the_security_schemes_are_the_key_and_the_dashboard_session() -> None:
    doc = openapi.document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["dashboardSession"]["in"] == "cookie"
    assert doc["paths"]["/tasks"]["get"]["security"] == [{"apiKey": []}]
    assert doc["paths"]["/dashboard/api/queues"]["get"]["security"] == [{"dashboardSession": []}]
    purge = doc["paths"]["/dashboard/api/queues/{name}/dead-letters/purge"]["post"]
    assert purge["security"] == [{"dashboardSession": [], "csrfToken": []}]
    assert doc["paths"]["/books"]["get"]["security"] == []


def test_get_openapi_json_is_public_cached_and_the_built_document(api: Api) -> None:
    response = api.request("GET", "/openapi.json")  # no Authorization header
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert "max-age" in response.headers["Cache-Control"]
    assert response.json() == openapi.document()


def test_an_outage_answers_503_with_retry_after_as_the_contract_says(gateway_url: str, faults: Any) -> None:
    """Fuzzing never meets an outage: inject one and check the 503 against the document (schema and headers)."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    operation = schemathesis.openapi.from_dict(openapi.document())["/books/{book_id}"]["GET"]
    case = operation.Case(path_parameters={"book_id": str(uuid.uuid4())})
    faults.add(service="dynamodb", action="GetItem", code="ServiceUnavailable", status=503)
    response = case.call(base_url=gateway_url, timeout=60)
    faults.clear()
    assert response.status_code == 503 and response.headers.get("retry-after") == ["5"], response.headers
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    case.validate_response(response, checks=[*checks, response_headers_conformance])
    with pytest.raises(FailureGroup):  # and the fuzzing's check would have seen it
        case.validate_response(response, checks=[not_a_server_error])
