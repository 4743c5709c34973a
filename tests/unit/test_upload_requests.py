"""Direct cover upload requests refused by the API before anything is stored: bad shapes, types,
sizes, and an inline cover beside an upload."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import unique_author


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"content_type": "image/gif", "size": 10}, 422, "cover_upload.content_type"),
        ({"content_type": "image/jpeg", "size": 0}, 422, "cover_upload.size"),
        ({"content_type": "image/jpeg", "size": "12"}, 422, "cover_upload.size"),
        ({"content_type": "image/jpeg"}, 422, "cover_upload.size"),
        ({"content_type": "image/jpeg", "size": 10, "key": "x"}, 422, "cover_upload.key"),
        ({"content_type": "image/jpeg", "size": 26 * 1024 * 1024}, 413, "cover_upload.size"),
    ],
)
def test_bad_cover_upload_requests_get_a_clear_error(api: Any, body: dict[str, Any], status: int, field: str) -> None:
    got, error = api.post("/books", {"title": "T", "authors": [unique_author()], "cover_upload": body})
    assert got == status, error
    assert set(error) == {"error", "message", "fields"} and field in [f["field"] for f in error["fields"]]


def test_inline_cover_and_cover_upload_together_are_refused(api: Any) -> None:
    body = {
        "title": "Both",
        "authors": [unique_author()],
        "cover": "aGVsbG8=",
        "cover_upload": {"content_type": "image/jpeg", "size": 10},
    }
    status, error = api.post("/books", body)
    assert status == 422 and "either cover" in error["fields"][0]["message"]
