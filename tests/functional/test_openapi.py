"""The published contract: `GET /openapi.json` documents every route, and nothing else, as valid OpenAPI 3.1.

The running API is checked against it by Schemathesis in tests/integration/test_contract.py (`make test-contract`).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.api import openapi


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
