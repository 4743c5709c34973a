"""Celery's canvas on SQS + Lambda: `group`, `chord`, and the `link`/`link_error` callbacks.

Callbacks ride in the task's envelope (`links`) and are told by a final-state hook
(`tasks/hooks.py`) when the task is SUCCESS, FAILURE or REVOKED. A chord counts its members
in DynamoDB (`tasks/chord_store.py`):

1. each member's first final result is saved by a conditional put of its row;
2. the head's counter grows by one only where the member's index is not yet in its set
   (one conditional UpdateItem: a duplicate, a retry or a redrive never counts twice);
3. the member that brings the count to the total dispatches the callback in one transaction
   with a conditional flag on the head, through the outbox: so it is sent exactly once, and
   a crash after the commit leaves it to the relay.

The callback runs in `canvas.chord_unlock` (Celery's `celery.chord_unlock`), which reads the
member rows (BatchGetItem) and calls the callback's function with the list of results: the
results travel by reference, never in an SQS message (1 MiB at most).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed, utcnow
from chalicelib.platform.observability import emit, logger
from chalicelib.platform.transactions import TransactionCancelled, transaction
from chalicelib.tasks import outbox
from chalicelib.tasks.chord_store import ChordItem, head_key, member_key
from chalicelib.tasks.decorator import task
from chalicelib.tasks.dispatch import deliver, dispatch
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.hooks import Final, on_final
from chalicelib.tasks.registry import Signature, get_task
from chalicelib.tasks.result import AsyncResult
from chalicelib.tasks.states import TaskStatus

NAMESPACE = uuid.UUID("6d1f5a0e-8c1b-4f7e-9a51-3b2c7e4d9f10")
UNLOCK_TASK = "canvas.chord_unlock"
#: Members of one chord: the head's set of counted indexes and the unlock's reads grow with it.
MAX_CHORD_MEMBERS = 1000
#: A member result larger than this is kept by reference (its task id) in the chord, not inline.
MAX_INLINE_RESULT_BYTES = 16 * 1024


def _ident(*parts: Any) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


def _flatten(tasks: tuple[Any, ...]) -> list[Signature]:
    if len(tasks) == 1 and not isinstance(tasks[0], Signature):
        tasks = tuple(tasks[0])
    signatures = list(tasks)
    if not all(isinstance(sig, Signature) for sig in signatures):
        raise TypeError("a group takes signatures (task.s(...))")
    return signatures


@dataclass(frozen=True)
class GroupResult:
    """The ids of a group's tasks, in order."""

    id: str
    task_ids: list[str]

    def get(self, timeout: float | None = 10.0, propagate: bool = True) -> list[Any]:
        """Every task's result in order (Celery's `GroupResult.get`), each waited for in turn."""
        return [AsyncResult(task_id).get(timeout, propagate) for task_id in self.task_ids]


@dataclass(frozen=True)
class ChordResult:
    """A chord's id, its members' task ids and its callback's task id (the unlock task)."""

    id: str
    task_ids: list[str]
    callback_id: str

    def get(self, timeout: float | None = 10.0, propagate: bool = True) -> Any:
        """The callback's result once it ran (Celery's chord `AsyncResult.get`)."""
        return AsyncResult(self.callback_id).get(timeout, propagate)


class group:  # noqa: N801 - Celery's name
    """Tasks sent together (Celery's `group`): `group(a.s(1), b.s(2))` or `group([...])`."""

    def __init__(self, *tasks: Any) -> None:
        self.tasks = _flatten(tasks)

    def apply_async(self, owner: str | None = None) -> GroupResult:
        """Send every task (one batch of records and SQS sends); returns their ids."""
        return GroupResult(str(uuid.uuid4()), dispatch(self.tasks, owner))


class chord:  # noqa: N801 - Celery's name
    """A group whose `body` callback runs once every member is final (Celery's `chord`).

    `chord(header, body)` with `header` a `group` or signatures, and `body` a signature whose
    function takes the list of member results first: one dict per member in order, with
    `index`, `task_id`, `status` (SUCCESS, FAILURE, REVOKED), `result` and `error`.
    """

    def __init__(self, header: group | Iterable[Signature], body: Signature) -> None:
        self.members = header.tasks if isinstance(header, group) else _flatten((header,))
        if len(self.members) > MAX_CHORD_MEMBERS:
            raise ValueError(f"a chord takes at most {MAX_CHORD_MEMBERS} members")
        self.body = body

    def apply_async(self, owner: str | None = None, chord_id: str | None = None) -> ChordResult:
        """Save the chord's head, then send its members; returns the ids.

        Ids are derived from the chord id, so applying the same chord (same `chord_id`)
        again sends only what was not sent: a retried task that starts a chord is safe.
        """
        ident = chord_id or str(uuid.uuid4())
        callback_id = _ident(ident, "callback")
        members = [
            replace(sig, task_id=_ident(ident, "member", i)).linked(chord={"id": ident, "index": i})
            for i, sig in enumerate(self.members)
        ]
        head = ChordItem(
            head_key(ident),
            total=len(members),
            done=0,
            callback=self.body.as_link(),
            callback_id=callback_id,
            owner=owner,
            expires_at=utcnow() + timedelta(days=get_settings().task_ttl_days),
        )
        try:
            head.save(condition=ChordItem.id.does_not_exist())
        except PutError as exc:
            if not condition_failed(exc):
                raise
            head = ChordItem.get(head_key(ident), consistent_read=True)
        if not members:
            _unlock_if_complete(head)
        dispatch(members, owner)
        return ChordResult(ident, [sig.task_id for sig in members], callback_id)


def _bounded(result: Any, task_id: str) -> Any:
    if len(json.dumps(result).encode()) <= MAX_INLINE_RESULT_BYTES:
        return result
    return {"ref": task_id, "truncated": True}  # read the whole result from the member's task record


def _record_member(chord_id: str, index: int, task_id: str, final: Final) -> None:
    """Count a member once, with its first final result; dispatch the callback if it was the last."""
    row = ChordItem(
        member_key(chord_id, index),
        index=index,
        task_id=task_id,
        member_status=final.status,
        result=_bounded(final.result, task_id),
        error=final.error,
        expires_at=utcnow() + timedelta(days=get_settings().task_ttl_days),
    )
    try:
        row.save(condition=ChordItem.id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
    head = ChordItem(head_key(chord_id))
    try:
        head.update(
            actions=[ChordItem.done.add(1), ChordItem.members.add({index})],
            condition=ChordItem.id.exists() & ~ChordItem.members.contains(index),
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        try:
            head = ChordItem.get(head_key(chord_id), consistent_read=True)  # counted before: look again
        except DoesNotExist:
            logger.warning("a chord member finished after its chord expired", extra={"chord_id": chord_id})
            return
    _unlock_if_complete(head)


def _unlock_if_complete(head: ChordItem) -> None:
    """Dispatch the callback once: a conditional flag on the head and its record, in one transaction."""
    if head.dispatched or int(head.done or 0) < int(head.total or 0):
        return
    chord_id = head.id.removeprefix("chord#")
    signature = get_task(UNLOCK_TASK).s(chord_id, task_id=head.callback_id)
    try:
        with transaction() as tx:
            tx.update(
                "chord",
                ChordItem(head.id),
                [ChordItem.dispatched.set(1)],
                condition=ChordItem.dispatched.does_not_exist(),
            )
            messages = outbox.stage(tx, [signature], head.owner)
    except TransactionCancelled:
        return  # another run of the last member dispatched it
    emit("ChordsUnlocked")
    deliver([signature], messages, head.owner)


def _send_links(env: Envelope, key: str, first: list[Any]) -> None:
    callbacks = (env.links or {}).get(key) or []
    signatures = [
        get_task(spec["task"]).s(
            *first, *spec.get("args", []), task_id=_ident(env.task_id, key, i), **spec.get("kwargs", {})
        )
        for i, spec in enumerate(callbacks)
    ]
    if signatures:
        dispatch(signatures)


@on_final
def tell_callbacks(env: Envelope, final: Final) -> None:
    """The final-state hook: count a chord member, send `link` or `link_error` callbacks (idempotent)."""
    links = env.links or {}
    membership = links.get("chord")
    if isinstance(membership, dict):
        _record_member(str(membership["id"]), int(membership["index"]), env.task_id, final)
    if final.status is TaskStatus.SUCCESS:
        _send_links(env, "link", [final.result])
    else:
        _send_links(env, "link_error", [env.task_id, final.error])


def chord_results(chord_id: str, total: int) -> list[dict[str, Any]]:
    """The member rows of a chord in order: BatchGetItem, 100 keys a call."""
    rows = {row.index: row for row in ChordItem.batch_get([member_key(chord_id, i) for i in range(total)])}
    results = []
    for i in range(total):
        row = rows.get(i)
        if row is None:  # cannot happen once the chord is complete, unless the rows expired
            results.append({"index": i, "task_id": None, "status": "MISSING", "result": None, "error": "no result"})
            continue
        results.append(
            {
                "index": i,
                "task_id": row.task_id,
                "status": row.member_status,
                "result": row.result,
                "error": row.error,
            }
        )
    return results


@task(UNLOCK_TASK, max_retries=5)
def chord_unlock(chord_id: str) -> Any:
    """Run a complete chord's callback with its members' results (first final result of each)."""
    head = ChordItem.get(head_key(chord_id), consistent_read=True)
    spec = head.callback or {}
    results = chord_results(chord_id, int(head.total or 0))
    return get_task(spec["task"]).func(results, *spec.get("args", []), **spec.get("kwargs", {}))


def chord_progress(chord_id: str) -> int:
    """How many members of a chord are final so far (0 before it started)."""
    try:
        return int(ChordItem.get(head_key(chord_id)).done or 0)
    except DoesNotExist:
        return 0
