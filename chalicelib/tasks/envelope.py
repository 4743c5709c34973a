"""The versioned JSON envelope that carries a task through SQS."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 256 * 1024


class EnvelopeError(ValueError):
    """The message body is not a task envelope this code can run."""


@dataclass(frozen=True)
class Envelope:
    """A task invocation: which task, with what arguments, under which id."""

    task_id: str
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    version: int = ENVELOPE_VERSION
    #: The rate-limit slot (epoch seconds) reserved for this message when it was put off
    #: (`tasks/throttle.py`); optional, so older workers ignore it.
    slot: float | None = None
    #: Callbacks told when the task is final (`link`, `link_error`, chord membership; tasks/canvas.py).
    links: dict[str, Any] | None = None
    #: Sent while its record's transaction commits (`tasks/outbox.py`): a worker must not
    #: create a missing record but wait for it (`records.claim`); optional, like `slot`.
    staged: bool = False

    def encode(self) -> str:
        """The message body."""
        fields: dict[str, Any] = {
            "v": self.version,
            "id": self.task_id,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "attempt": self.attempt,
        }
        if self.slot is not None:
            fields["slot"] = self.slot
        if self.staged:
            fields["staged"] = True
        if self.links:
            fields["links"] = self.links  # optional: older consumers never see it on their own tasks
        body = json.dumps(
            fields,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        if len(body.encode()) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(f"envelope of {self.task} is larger than {MAX_ENVELOPE_BYTES} bytes")
        return body


def decode(body: str) -> Envelope:
    """Parse and check a message body; raise EnvelopeError saying what is wrong."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("body is not a JSON object")
    version = data.get("v")
    if version != ENVELOPE_VERSION:
        raise EnvelopeError(f"unsupported envelope version {version!r} (expected {ENVELOPE_VERSION})")
    task_id, task = data.get("id"), data.get("task")
    if not isinstance(task_id, str) or not task_id or len(task_id) > 128:
        raise EnvelopeError("envelope field 'id' must be a non-empty string of at most 128 characters")
    if not isinstance(task, str) or not task:
        raise EnvelopeError("envelope field 'task' must be a non-empty string")
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if not isinstance(args, list):
        raise EnvelopeError("envelope field 'args' must be a list")
    if not isinstance(kwargs, dict):
        raise EnvelopeError("envelope field 'kwargs' must be an object")
    attempt = data.get("attempt", 1)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise EnvelopeError("envelope field 'attempt' must be a positive integer")
    slot = data.get("slot")
    if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int | float) or slot < 0):
        raise EnvelopeError("envelope field 'slot' must be a number of epoch seconds")
    staged = data.get("staged", False)
    if not isinstance(staged, bool):
        raise EnvelopeError("envelope field 'staged' must be a boolean")
    links = data.get("links")
    if links is not None and not isinstance(links, dict):
        raise EnvelopeError("envelope field 'links' must be an object")
    return Envelope(
        task_id=task_id,
        task=task,
        args=args,
        kwargs=kwargs,
        attempt=attempt,
        slot=slot,
        links=links or None,
        staged=staged,
    )
