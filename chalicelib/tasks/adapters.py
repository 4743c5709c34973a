"""Messages on a work queue that are not task envelopes, read by the code that knows them.

S3 sends its own JSON to the media queue when a cover is uploaded. The framework knows no
such producer: the module that does registers an adapter when it is imported (`covers/upload/tasks.py`
for S3 notifications; `app_tasks`, which `app` imports, imports it, so every process that runs a
worker has it). The worker asks the adapters first and decodes an envelope only when none
claims the body.

Without the adapter an S3 message is not dropped: it fails to decode as an envelope, so it
is a poison message like any other (dead-lettered with its reason, a FAILURE record, the
PoisonMessages metric) and can be redriven once the adapter is back.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable

from chalicelib.tasks.envelope import Envelope, decode


class Skip(enum.Enum):
    """An adapter's answer for a message it knows that asks for no work (S3's test event)."""

    NOTHING_TO_DO = "nothing to do"


NOTHING_TO_DO = Skip.NOTHING_TO_DO

# A raw message body → its task, NOTHING_TO_DO, or None when the body is not this adapter's.
Adapter = Callable[[str], Envelope | Skip | None]

_ADAPTERS: list[Adapter] = []


def register(adapter: Adapter) -> Adapter:
    """Ask `adapter` about every message body from now on (once, however often registered)."""
    if adapter not in _ADAPTERS:
        _ADAPTERS.append(adapter)
    return adapter


def registered() -> tuple[Adapter, ...]:
    """The adapters in the order they are asked."""
    return tuple(_ADAPTERS)


def adapt(body: str) -> Envelope | Skip | None:
    """What the first adapter that knows `body` makes of it; None when none does."""
    for adapter in _ADAPTERS:
        result = adapter(body)
        if result is not None:
            return result
    return None


def read(body: str) -> Envelope | Skip:
    """The task a message body asks for; raises EnvelopeError when it is neither adapted nor an envelope."""
    adapted = adapt(body)
    return decode(body) if adapted is None else adapted


def identity(body: str, message_id: str) -> tuple[str, str]:
    """The task id and name a message claims, even when it is not a valid envelope.

    Falls back to `sqs-<message id>` and `<unreadable>`, so every message can get a record.
    """
    adapted = adapt(body)
    if isinstance(adapted, Envelope):
        return adapted.task_id, adapted.task
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        data = None
    data = data if isinstance(data, dict) else {}
    task_id, name = data.get("id"), data.get("task")
    if not (isinstance(task_id, str) and 0 < len(task_id) <= 128):
        task_id = f"sqs-{message_id}"
    if not (isinstance(name, str) and 0 < len(name) <= 200):
        name = "<unreadable>"
    return task_id, name
