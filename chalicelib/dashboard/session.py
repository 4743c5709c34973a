"""Dashboard sign-in: an admin API key is posted once and exchanged for a signed session cookie.

The key never travels in a URL and is never stored in the browser: the cookie holds only
the user name, an expiry and a random session id, signed with the stage's secret
(`signing.sign`, purpose "dashboard-session"), and it is HttpOnly, Secure and
SameSite=Strict. The session id is also an item of the sessions table (`platform/dashboard_session_model.py`):
signing out deletes it, so the old cookie is refused at once, server-side. Each request
costs one GetItem by key (checked after the signature, so a forged cookie costs none). A
revoked API key keeps a session open until it expires: DASHBOARD_SESSION_SECONDS is short.
Every action is a POST that must carry a CSRF token derived from the session id (purpose
"dashboard-csrf") in a header, and whose Origin, when the browser sends one, is this host.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from chalice.app import Request

from chalicelib.api.auth import authenticate
from chalicelib.platform import signing
from chalicelib.platform.config import get_settings
from chalicelib.platform.dashboard_session_model import DashboardSession
from chalicelib.platform.errors import Forbidden, Unauthorized, ValidationFailed

COOKIE = "dashboard_session"
CSRF_HEADER = "x-csrf-token"
SESSION_PURPOSE = "dashboard-session"
CSRF_PURPOSE = "dashboard-csrf"
MAX_COOKIE = 1024


@dataclass(frozen=True)
class Session:
    """A signed-in admin."""

    user: str
    session_id: str
    expires_at: int

    @property
    def csrf_token(self) -> str:
        """The token every action of this session must send back."""
        return signing.sign(self.session_id.encode(), CSRF_PURPOSE)

    def as_dict(self) -> dict[str, Any]:
        """What the page may know about its session (no secret: the cookie stays HttpOnly)."""
        return {"user": self.user, "expires_at": self.expires_at, "csrf_token": self.csrf_token}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(session: Session) -> str:
    payload = _b64(json.dumps({"u": session.user, "sid": session.session_id, "exp": session.expires_at}).encode())
    return f"{payload}.{signing.sign(payload.encode(), SESSION_PURPOSE)}"


def _decode(value: str) -> Session | None:
    payload, _, signature = value.partition(".")
    if not payload or not signature or not signing.verify(payload.encode(), signature, SESSION_PURPOSE):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["u"]), str(data["sid"]), int(data["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires_at > time.time() else None


def login(body: Any) -> tuple[Session, str]:
    """Check an admin key posted as `{"key": ...}`; returns the session and its Set-Cookie value."""
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not 0 < len(key) <= 512 or any(ch.isspace() for ch in key):
        raise ValidationFailed("invalid key", [{"field": "key", "message": "an API key is required"}])
    caller = authenticate(f"Bearer {key}")
    if caller is None:
        raise Unauthorized("unknown API key")
    if not caller.admin:
        raise Forbidden("the dashboard needs an admin key")
    lifetime = get_settings().dashboard_session_seconds
    session = Session(caller.user, secrets.token_urlsafe(16), int(time.time()) + lifetime)
    expires = datetime.fromtimestamp(session.expires_at, UTC)
    DashboardSession(session.session_id, user=session.user, expires_at=expires).save()
    return session, cookie_header(_encode(session), lifetime)


def revoke(session: Session) -> None:
    """Sign out server-side: the session's cookie is refused from now on, wherever it is kept."""
    DashboardSession(session.session_id).delete()


def _live(session: Session) -> bool:
    """Not signed out (consistent read: a sign-out is seen by the very next request)."""
    try:
        stored = DashboardSession.get(session.session_id, consistent_read=True)
    except DashboardSession.DoesNotExist:
        return False
    return stored.user == session.user


def cookie_header(value: str, max_age: int) -> str:
    """The Set-Cookie value; no Path, so it defaults to the dashboard's own path (`…/dashboard`)."""
    return f"{COOKIE}={value}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"


def logout_cookie() -> str:
    """A Set-Cookie value that removes the session cookie."""
    return cookie_header("", 0)


def _cookie_value(request: Request) -> str | None:
    raw = request.headers.get("cookie") or ""
    if not raw or len(raw) > 8192:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and 0 < len(morsel.value) <= MAX_COOKIE else None


def check_origin(request: Request) -> None:
    """Refuse a POST sent from another site (defence in depth next to SameSite=Strict and CSRF)."""
    if (request.headers.get("sec-fetch-site") or "same-origin") not in ("same-origin", "none"):
        raise Forbidden("cross-site request refused")
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != (request.headers.get("host") or ""):
        raise Forbidden("cross-origin request refused")


def current(request: Request, action: bool = False) -> Session:
    """The signed-in admin of this request; for actions (POSTs) also the CSRF token and Origin."""
    value = _cookie_value(request)
    session = _decode(value) if value else None
    if session is None or not _live(session):
        raise Unauthorized("sign in to the dashboard")
    if action:
        check_origin(request)
        token = request.headers.get(CSRF_HEADER) or ""
        if not token or not signing.verify(session.session_id.encode(), token, CSRF_PURPOSE):
            raise Forbidden("missing or invalid CSRF token")
    return session
