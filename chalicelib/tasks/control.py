"""Framework bookkeeping that is not a task record: rate-limit schedules and periodic-task leases.

Kept in the task table (so every function that may use it already has its IAM grant) under
ids that cannot be task ids (`control#…`). These items carry none of the indexes' keys, so
they never show in `GET /tasks` or the outbox; `GET /tasks/{id}` answers 404 for them.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, condition_failed

PREFIX = "control#"


class TaskControl(Model):
    """One rate-limit schedule (`control#rate#<task>`) or periodic task (`control#periodic#<name>`)."""

    class Meta(TableMeta):
        table_setting = "tasks_table"

    id = UnicodeAttribute(hash_key=True)
    tat = NumberAttribute(null=True)  # rate limit: the next free slot (epoch seconds)
    # periodic tasks: the lease of the run in progress, and what the last runs did
    lease_until = NumberAttribute(null=True)
    lease_token = UnicodeAttribute(null=True)
    schedule = UnicodeAttribute(null=True)
    runs = NumberAttribute(null=True)
    skipped = NumberAttribute(null=True)
    last_run_at = UTCDateTimeAttribute(null=True)
    last_finished_at = UTCDateTimeAttribute(null=True)
    last_status = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    last_duration_ms = NumberAttribute(null=True)
    last_skipped_at = UTCDateTimeAttribute(null=True)


def is_control_id(task_id: str) -> bool:
    """True for the id of a control item (never a task's)."""
    return task_id.startswith(PREFIX)


class TaskRateSlots:
    """The GCRA schedule of one task's `rate_limit` (`platform/ratelimit.py`'s SlotStore)."""

    def __init__(self, task_name: str) -> None:
        self.key = f"{PREFIX}rate#{task_name}"

    def read(self) -> float | None:
        try:
            return float(TaskControl.get(self.key, consistent_read=True).tat or 0.0)
        except TaskControl.DoesNotExist:
            return None

    def swap(self, old: float | None, new: float) -> bool:
        try:
            if old is None:
                TaskControl(self.key, tat=new).save(condition=TaskControl.id.does_not_exist())
            else:
                condition = TaskControl.tat == old if old > 0 else TaskControl.tat.does_not_exist()
                TaskControl(self.key).update(actions=[TaskControl.tat.set(new)], condition=condition)
        except (PutError, UpdateError) as exc:
            if condition_failed(exc):
                return False
            raise
        return True
