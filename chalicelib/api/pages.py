"""The small HTML pages that mail links open (the address owner reads them in a browser)."""

from __future__ import annotations

import html
from typing import Any

from chalice.app import Response

_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
)


def page(title: str, body_html: str, status: int = 200) -> Response:
    """An HTML response that no page may frame or cache."""
    return Response(
        body=_HEAD.format(title=html.escape(title), body=body_html),
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; form-action 'self'",
        },
    )


def confirmed(result: dict[str, Any]) -> Response:
    """After a confirmation link was followed."""
    return page(
        "Subscription confirmed",
        f"<p>{html.escape(result['email'])} will hear of new books by {html.escape(result['author'])}.</p>"
        "<p>Every mail has a link to stop them.</p>",
    )


def unsubscribe_form(target: dict[str, Any], token: str) -> Response:
    """What a GET of an unsubscribe link shows: one button that POSTs (link scanners only GET)."""
    if target["status"] == "unsubscribed":
        return unsubscribed(target)
    return page(
        "Stop these mails?",
        f"<p>Stop mail about new books by {html.escape(target['author'])} to {html.escape(target['email'])}.</p>"
        f'<form method="post" action="?token={html.escape(token, quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


def unsubscribed(result: dict[str, Any]) -> Response:
    """After unsubscribing."""
    return page(
        "Unsubscribed",
        f"<p>{html.escape(result['email'])} gets no more mail about books by {html.escape(result['author'])}.</p>",
    )
