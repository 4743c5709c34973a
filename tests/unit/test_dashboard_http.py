"""The dashboard's HTTP answers that need no AWS: the login's validation, the page's and assets'
headers and caching, the trailing-slash redirect. Sessions and JSON views are in
tests/functional/test_dashboard_api.py."""

from __future__ import annotations

from typing import Any, cast

import pytest
import requests


@pytest.fixture(scope="module")
def base_url(gateway_url: str) -> str:
    """The app behind the local API Gateway, over real HTTP (the `api` fixture's server)."""
    return gateway_url


def _error(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    return cast("dict[str, Any]", body)


@pytest.mark.parametrize("body", [{}, {"key": ""}, {"key": 42}, {"key": "a b"}, ["key"]])
def test_login_with_a_malformed_body_is_a_422_naming_the_field(base_url: Any, body: Any) -> None:
    response = requests.post(base_url + "/dashboard/login", json=body, timeout=30)
    assert _error(response, 422)["fields"] == [{"field": "key", "message": "an API key is required"}]


def test_trailing_slash_redirects_to_the_page(base_url: Any) -> None:
    """GIVEN `/dashboard/` WHEN fetched THEN a redirect to `/dashboard`, where the relative asset links resolve."""
    response = requests.get(base_url + "/dashboard/", allow_redirects=False, timeout=30)
    assert response.status_code == 308 and response.headers["Location"] == "../dashboard"
    assert response.headers["X-Frame-Options"] == "DENY"
    followed = requests.get(base_url + "/dashboard/", timeout=30)
    assert followed.status_code == 200 and followed.url == base_url + "/dashboard"
    assert 'src="dashboard/static/app.js?v=' in followed.text


def test_page_and_assets_have_types_caching_and_security_headers(base_url: Any) -> None:
    page = requests.get(base_url + "/dashboard", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    links = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
    for name, content_type in links.items():
        marker = f"dashboard/static/{name}?v="
        version = page.text.split(marker, 1)[1].split('"', 1)[0]
        asset = requests.get(f"{base_url}/{marker}{version}", timeout=30)
        assert asset.status_code == 200 and asset.headers["Content-Type"] == content_type
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        stale = requests.get(f"{base_url}/dashboard/static/{name}?v=old", timeout=30)
        assert stale.headers["Cache-Control"] == "no-cache"
    for name in ("index.html", "..%2Fweb.py", "nothing.js"):
        _error(requests.get(f"{base_url}/dashboard/static/{name}", timeout=30), 404)
