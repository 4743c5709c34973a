"""The names of a task's states, as types: a misspelt status is a mypy error, not a silent miss.

`StrEnum`s, so the values stored in DynamoDB and shown in JSON stay the plain strings they were.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """A task record's status (the transitions are the state machine's, tasks/records.py)."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"  # final, like SUCCESS and FAILURE: written by `tasks/revocation.revoke`


#: Statuses a record never leaves by itself.
FINAL_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.REVOKED})


class ClaimOutcome(StrEnum):
    """What a worker's claim on a record found."""

    CLAIMED = "claimed"  # run it, holding the lease
    DONE = "done"  # it succeeded already (a duplicate delivery)
    BUSY = "busy"  # another run holds the lease
    REVOKED = "revoked"
    ABSENT = "absent"  # a staged message whose record is not committed (yet)


class AttemptOutcome(StrEnum):
    """What became of one attempt, and so of its message."""

    SUCCESS = "success"
    DUPLICATE = "duplicate"  # already succeeded: the message is acknowledged
    BUSY = "busy"  # runs elsewhere: look again after the lease
    ABSENT = "absent"  # the worker waits for the record's commit
    RETRY = "retry"  # try again after `delay`
    FAILURE = "failure"  # final; dead-lettered with the reason
    REVOKED = "revoked"  # dropped, not dead-lettered
