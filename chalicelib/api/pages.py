"""The small HTML pages that mail links open (the address owner reads them in a browser)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.api.http import answer_errors, error_response, headers_of, status_of
from chalicelib.platform.errors import DomainError

View = Callable[..., Response]

_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
)


def page(title: str, body_html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An HTML response that no page may frame or cache."""
    return Response(
        body=_HEAD.format(title=html.escape(title), body=body_html),
        status_code=status,
        headers={
            **(headers or {}),
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; form-action 'self'",
        },
    )


def link_view(request_of: Callable[[], Request | None]) -> Callable[[View], View]:
    """Errors of a mail link's route as a page for a browser, as JSON for any other client.

    A reader who follows an expired link should see a page that says so, not raw JSON; an API
    client (no `text/html` in `Accept`) keeps the one error shape.
    """

    def decorate(view: View) -> View:
        def render(error: DomainError) -> Response:
            request = request_of()
            accept = str((request.headers.get("accept") if request is not None else "") or "").lower()
            return failed(error) if "text/html" in accept else error_response(error)

        return answer_errors(view, render)

    return decorate


_FAILURE_TITLES = {
    400: "This link is not valid",
    410: "This link can no longer be used",
    422: "This link is not valid",
    503: "Please try again in a moment",
}


def failed(error: DomainError) -> Response:
    """An error as a page, with the status and headers (Retry-After) of the JSON answer."""
    status = status_of(error)
    title = _FAILURE_TITLES.get(status, "Something went wrong")
    hint = "<p>Check that the whole link was opened, or ask for a new mail by subscribing again.</p>"
    return page(
        title,
        f"<p>{html.escape(error.message[:300])}</p>{hint if status in (400, 410, 422) else ''}",
        status,
        headers_of(error),
    )


def confirm_form(target: dict[str, Any], token: str) -> Response:
    """What a GET of a confirmation link shows: one button that POSTs (link scanners only GET).

    The token in the form's action is the only credential, as for unsubscribing: a cross-site
    form cannot confirm without it, no cookie is involved, and no page may frame this one.
    """
    return page(
        "Confirm your subscription?",
        f"<p>Send news of books by {html.escape(target['author'])} to {html.escape(target['email'])}.</p>"
        f'<form method="post" action="?token={html.escape(token, quote=True)}">'
        '<input type="hidden" name="confirm" value="yes">'
        '<button type="submit">Confirm</button></form>'
        "<p>If you did not ask for this, close this page: nothing is sent without your confirmation.</p>",
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
