"""The fan-out's task names, apart from its code.

`chalicelib.app_tasks` declares these tasks at every function's init; naming them here lets it do
so without importing the fan-out (and its mail models), which only the default worker runs.
"""

from __future__ import annotations

PAGE_TASK, RESEND_TASK = "mail.fanout_page", "mail.resend"
FANOUT_TASKS = ("books.notify_subscribers", PAGE_TASK, RESEND_TASK)  # the first is books.NOTIFY_TASK
