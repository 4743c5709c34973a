"""The tokens in mail links: confirmation (random, stored hashed) and unsubscribe (signed).

Both start with the subscription they are about, so a link needs no database index:
`<payload>.<secret>` where payload is base64url of `[author_key, email]`.

- Confirmation: the secret is 256 random bits; the subscription keeps only its SHA-256,
  so a leaked table cannot confirm anyone, and a conditional update makes it single-use.
- Unsubscribe: the secret is an HMAC of the payload (`chalicelib.platform.signing`, purpose
  `mail-unsubscribe`); it never expires, as RFC 8058 links must keep working.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import quote

from chalicelib.platform import signing
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import Gone, MalformedRequest

MAX_TOKEN_CHARS = 1024
_UNSUBSCRIBE = "mail-unsubscribe"


class BadToken(MalformedRequest):
    """The token is not one this API made (names `token`)."""

    code = "InvalidToken"

    def __init__(self, message: str = "this link is not valid") -> None:
        super().__init__(message, [{"field": "token", "message": message}])


class GoneToken(Gone):
    """The token was real but is expired or already used."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [{"field": "token", "message": message}])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _payload(author_key: str, email: str) -> str:
    return _b64(json.dumps([author_key, email], separators=(",", ":"), ensure_ascii=False).encode())


def _split(token: str | None) -> tuple[str, str, str, str]:
    """(payload, secret, author_key, email) of a well-formed token, else BadToken."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise BadToken()
    payload, secret = token.split(".")
    try:
        author_key, email = json.loads(_unb64(payload))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadToken() from None
    if not (isinstance(author_key, str) and isinstance(email, str) and 0 < len(author_key) <= 200):
        raise BadToken()
    if not (0 < len(email) <= 254 and secret):
        raise BadToken()
    return payload, secret, author_key, email


def token_hash(secret: str) -> str:
    """What the table keeps of a confirmation secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_confirmation(author_key: str, email: str) -> tuple[str, str]:
    """A fresh confirmation token and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return f"{_payload(author_key, email)}.{secret}", token_hash(secret)


def read_confirmation(token: str | None) -> tuple[str, str, str]:
    """(author_key, email, secret hash) of a confirmation token; BadToken when malformed."""
    _, secret, author_key, email = _split(token)
    return author_key, email, token_hash(secret)


def unsubscribe_token(author_key: str, email: str) -> str:
    """The signed token of an unsubscribe link."""
    payload = _payload(author_key, email)
    return f"{payload}.{signing.sign(payload.encode(), _UNSUBSCRIBE)}"


def read_unsubscribe(token: str | None) -> tuple[str, str]:
    """(author_key, email) of an unsubscribe token; BadToken unless its signature is ours."""
    payload, signature, author_key, email = _split(token)
    if not signing.verify(payload.encode(), signature, _UNSUBSCRIBE):
        raise BadToken()
    return author_key, email


def link(path: str, token: str) -> str:
    """An absolute link to a public route of the API (PUBLIC_BASE_URL + path)."""
    return f"{get_settings().public_base_url}{path}?token={quote(token, safe='')}"


def confirm_url(token: str) -> str:
    """The confirmation link."""
    return link("/subscriptions/confirm", token)


def unsubscribe_url(author_key: str, email: str) -> str:
    """The unsubscribe link of one subscription."""
    return link("/subscriptions/unsubscribe", unsubscribe_token(author_key, email))
