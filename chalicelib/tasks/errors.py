"""Which failures are worth retrying."""

from __future__ import annotations

from email.errors import MessageDefect, MessageError

from chalicelib.platform import aws_errors
from chalicelib.platform.aws_errors import Fault


class PermanentTaskError(Exception):
    """The task can never succeed with these arguments: fail at once, no retry."""


class TransientTaskError(Exception):
    """A passing fault: retry with backoff."""


class DeadLettered(Exception):
    """What `on_failure` gets for a message the redrive policy moved to a DLQ (timeouts, crashes):
    the task raised nothing the worker could see."""


class TaskExpired(Exception):
    """What `on_failure` gets for a task not run because it was past its `expires`."""


def is_permanent(exc: BaseException, permanent: tuple[type[BaseException], ...] = ()) -> bool:
    """True when retrying `exc` cannot help."""
    if isinstance(exc, TransientTaskError):
        return False
    if isinstance(exc, PermanentTaskError) or (permanent and isinstance(exc, permanent)):
        return True
    if isinstance(exc, MessageError | MessageDefect):
        return True  # a mail the email package cannot build (e.g. a non-ASCII local part) never builds
    return aws_errors.classify(exc) is Fault.PERMANENT


#: How the executor's reason for a permanent failure begins (the record's `error`), and a
#: message that could not even be read: running either again with the same arguments fails the same way.
PERMANENT_REASON = "permanent error"
POISON_REASON = "poison message"


def is_permanent_reason(error: str | None) -> bool:
    """True for a FAILURE record whose error says a re-run cannot help."""
    return bool(error) and str(error).startswith((f"{PERMANENT_REASON}:", f"{POISON_REASON}:"))
