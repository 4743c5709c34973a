"""The published contract: `GET /openapi.json` documents every route, and nothing else, as valid OpenAPI 3.1.

Built from the route table and the request models, with no AWS: the document served over HTTP is
checked in tests/functional/test_openapi.py, the running API by Schemathesis in
tests/integration/test_contract.py (`make test-contract`).
"""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from chalicelib.api import openapi
from chalicelib.api.contract import OPERATIONS, PATH_PARAMETERS


def _routes() -> dict[str, Any]:
    import app  # reads its settings (the app's name) only; reaches no AWS

    return dict(app.app.routes)


def test_every_route_is_documented_and_nothing_else() -> None:
    routes = {(method, path) for path, entries in _routes().items() for method in entries}
    documented = [op.key for op in OPERATIONS]
    assert len(documented) == len(set(documented)), "an operation is declared twice"
    assert sorted(routes - set(documented)) == [], "routes missing from chalicelib/api/contract.py"
    assert sorted(set(documented) - routes) == [], "operations in the contract that no route serves"


def test_security_matches_each_routes_authorizer() -> None:
    doc = openapi.document()
    for path, entries in _routes().items():
        for method, entry in entries.items():
            security = doc["paths"][path][method.lower()]["security"]
            if entry.authorizer is not None:
                assert security == [{"apiKey": []}], f"{method} {path}"
            else:
                assert {"apiKey": []} not in security, f"{method} {path}"


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1")
    validate(doc, cls=OpenAPIV31SpecValidator)  # raises on the first error


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
