"""`GET /openapi.json` is public, cached, and the document the build wrote.

The running API is checked against it by Schemathesis in tests/integration/test_contract.py (`make test-contract`)."""

from __future__ import annotations

from helpers import Api

from chalicelib.api import openapi


def test_get_openapi_json_is_public_cached_and_the_built_document(api: Api) -> None:
    response = api.request("GET", "/openapi.json")  # no Authorization header
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert "max-age" in response.headers["Cache-Control"]
    assert response.json() == openapi.document()
