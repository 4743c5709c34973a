"""The dashboard's page and static assets, with the security headers every dashboard answer carries.

Assets are text (HTML, CSS, JS), so no API Gateway binary media type is involved: they
pass as UTF-8 bodies. The page links each asset with `?v=<content hash>`, so an asset
can be cached for a year (`immutable`) and a new deployment is picked up at once; the
page itself is revalidated on every load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chalice.app import Response

from chalicelib.platform.errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# No inline script or style anywhere: everything comes from the dashboard's own files.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One static file, read once per container."""

    body: str
    content_type: str
    version: str


@cache
def assets() -> dict[str, Asset]:
    """Every shipped asset by file name (the whitelist of what the static route serves)."""
    found = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix in CONTENT_TYPES and path.is_file():
            body = path.read_text(encoding="utf-8")
            found[path.name] = Asset(body, CONTENT_TYPES[path.suffix], hashlib.sha256(body.encode()).hexdigest()[:16])
    return found


@cache
def page_html() -> str:
    """The page with each asset's link pinned to its content version."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for name, asset in assets().items():
        html = html.replace(f'"dashboard/static/{name}"', f'"dashboard/static/{name}?v={asset.version}"')
    return html


def _headers(content_type: str, cache_control: str, **extra: str) -> dict[str, str | list[str]]:
    return {"Content-Type": content_type, "Cache-Control": cache_control, **SECURITY_HEADERS, **extra}


def page() -> Response:
    """The dashboard page (holds no data; it signs in and fetches JSON)."""
    body = page_html()
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
    return Response(body=body, status_code=200, headers=_headers("text/html; charset=utf-8", "no-cache", ETag=etag))


def redirect(location: str) -> Response:
    """A permanent redirect that keeps the method (308), with the dashboard's headers."""
    return Response(
        body="", status_code=308, headers=_headers("text/plain; charset=utf-8", "no-cache", Location=location)
    )


def static(name: str, version: str | None) -> Response:
    """A shipped asset; cached for a year when asked for by its current version."""
    asset = assets().get(name)
    if asset is None:
        raise NotFound(f"no asset {name!r}")
    cache_control = ASSET_CACHE if version == asset.version else "no-cache"
    return Response(
        body=asset.body,
        status_code=200,
        headers=_headers(asset.content_type, cache_control, ETag=f'"{asset.version}"'),
    )


def json_answer(body: Any, status: int = 200, **extra: str) -> Response:
    """A dashboard JSON answer: never cached (it is admin data), with the security headers."""
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers=_headers("application/json", "no-store", **extra),
    )
