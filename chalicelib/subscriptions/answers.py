"""The JSON answers of the subscription service, as types.

`chalicelib/api/responses.py` describes the same shapes for the published contract (a domain
may not import the API); tests/unit/test_answer_shapes.py keeps the two to the same keys.
"""

from __future__ import annotations

from typing import TypedDict


class Subscription(TypedDict):
    author: str
    email: str
    status: str


class Subscriber(TypedDict):
    """A stored row: not a `Subscription` subclass, as its author may be missing (a TypedDict
    cannot widen an inherited key)."""

    author: str | None
    email: str
    status: str
    created_at: str | None


class SubscriberPage(TypedDict):
    items: list[Subscriber]
    next_cursor: str | None
