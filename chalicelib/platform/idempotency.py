"""`Idempotency-Key`: a client retry gets the first answer instead of doing the work twice.

Powertools' idempotency utility did not fit: its INPROGRESS/COMPLETED records are written
in their own calls, outside the book's transaction, so a crash between them and the book
write leaves one without the other. Here the key's record is a conditional put INSIDE the
transaction that creates the work (`stage`): either the book, its tasks and the key are
all written, or none is, and a concurrent duplicate fails that condition.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.platform.errors import Conflict, ValidationFailed
from chalicelib.platform.idempotency_model import IdempotencyRecord
from chalicelib.platform.seam import Seam
from chalicelib.platform.transactions import Transaction

HEADER = "Idempotency-Key"
LABEL = "idempotency"
MAX_KEY = 255

#: The type of a route's answer, which its key replays.
Answer = TypeVar("Answer", bound=Mapping[str, Any])
_Answer_co = TypeVar("_Answer_co", bound=Mapping[str, Any], covariant=True)


def _field(message: str) -> list[dict[str, str]]:
    return [{"field": HEADER, "message": message}]


def key_from(request: Any) -> str | None:
    """The request's Idempotency-Key (None when absent); 422 when it is not 1-255 printable ASCII."""
    headers = getattr(request, "headers", None)
    value = headers.get(HEADER.lower()) if headers is not None else None
    if value is None:
        return None
    value = str(value)
    if not 0 < len(value) <= MAX_KEY or not all(33 <= ord(ch) <= 126 for ch in value):
        raise ValidationFailed(f"invalid {HEADER}", _field("must be 1 to 255 printable ASCII characters, no spaces"))
    return value


@dataclass(frozen=True)
class Claim(Generic[_Answer_co]):
    """A key for one route and user, with the fingerprint of the request it came with.

    Typed by the route's answer: the key's hash includes the route, so `replay` finds only
    answers of that shape (the caller names it: `claim: Claim[BookAccepted] | None = ...`).
    """

    key: str
    owner: str
    scope: str
    fingerprint: str


def claim_for(client_key: str | None, owner: str, scope: str, request: bytes) -> Claim[Answer] | None:
    """The key's identity for this user and route (None without a header)."""
    if client_key is None:
        return None
    digest = hashlib.sha256(json.dumps([owner, scope, client_key]).encode()).hexdigest()
    return Claim(digest, owner, scope, hashlib.sha256(request).hexdigest())


def read(key: str) -> IdempotencyRecord | None:
    """The key's record in DynamoDB (strongly consistent), or None."""
    try:
        return IdempotencyRecord.get(key, consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return None


Reader = Callable[[str], IdempotencyRecord | None]
_READER: Seam[Reader] = Seam(lambda: read)
#: Where `replay` looks a key's record up from now on: a store that commits the records in
#: memory (`books/store.py`'s configure); None: back to DynamoDB.
configure_reader = _READER.configure


def replay(claim: Claim[Answer] | None) -> Answer | None:
    """The stored answer when this key was used before with the same request; 422 if with another."""
    if claim is None:
        return None
    record = _READER.current()(claim.key)
    if record is None or not live(record):
        return None
    if record.fingerprint != claim.fingerprint:
        raise ValidationFailed(
            f"{HEADER} was used for a different request", _field("reuse a key only to retry the same request")
        )
    stored: Answer = record.response  # JSON, as `stage` wrote it for this key's route
    return copy.copy(stored)


def live(record: IdempotencyRecord) -> bool:
    """Not expired: TTL deletion lags, so an expired record may still be read (and replaced)."""
    return record.expires_at is None or record.expires_at >= utcnow()


def record_of(claim: Claim[Answer], response: Answer, status_code: int) -> IdempotencyRecord:
    """The record `stage` writes for a claim: its answer, kept for IDEMPOTENCY_TTL_HOURS."""
    return IdempotencyRecord(
        claim.key,
        owner=claim.owner,
        scope=claim.scope,
        fingerprint=claim.fingerprint,
        status_code=status_code,
        response=response,
        expires_at=utcnow() + timedelta(hours=get_settings().idempotency_ttl_hours),
    )


def stage(tx: Transaction, claim: Claim[Answer] | None, response: Answer, status_code: int) -> None:
    """Add the key's record (its answer) to `tx`; the transaction fails if the key exists."""
    if claim is None:
        return
    record = record_of(claim, response, status_code)
    # An expired record may linger until TTL removes it; it may be replaced.
    tx.put(LABEL, record, condition=IdempotencyRecord.key.does_not_exist() | (IdempotencyRecord.expires_at < utcnow()))


def after_conflict(claim: Claim[Answer] | None) -> Answer:
    """The answer for a request that lost the race to the same key: the winner's, or 409."""
    stored = replay(claim)
    if stored is None:
        raise Conflict(f"a request with this {HEADER} is still being processed; retry", _field("in use"))
    return stored
