"""Subscribers written straight into the table, for scale tests, benchmarks and trials.

`BatchWriteItem` (25 rows a call) instead of the API: subscribing thousands of addresses
through the double opt-in would take longer than the fan-out being measured.
"""

from __future__ import annotations

import uuid


def seed_subscribers(author: str, owner: str, confirmed: int, pending: int = 0) -> list[str]:
    """Write `confirmed` confirmed and `pending` unconfirmed subscribers of `author`; returns the confirmed addresses.

    Addresses carry a random tag, so seeding the same author twice adds new readers.
    """
    from chalicelib.platform.authors import author_key
    from chalicelib.subscriptions.models import Subscriber

    key, tag = author_key(author), uuid.uuid4().hex[:6]
    emails = [f"reader{i:07d}-{tag}@example.org" for i in range(confirmed)]
    with Subscriber.batch_write() as batch:
        for email in emails:
            batch.save(Subscriber(key, email, author=author, owner=owner, status="confirmed"))
        for i in range(pending):
            batch.save(Subscriber(key, f"pending{i:07d}-{tag}@example.org", author=author, owner=owner))
    return emails
