"""The fan-out's task names, apart from its code.

`chalicelib.app_tasks` declares these tasks at every function's init; naming them here lets it do
so without importing the fan-out (and its mail models), which only the default worker runs.
"""

from __future__ import annotations

PAGE_TASK, RESEND_TASK = "mail.fanout_page", "mail.resend"
FANOUT_TASKS = ("books.notify_subscribers", PAGE_TASK, RESEND_TASK)  # the first is books.NOTIFY_TASK
# time_limit of the pages: a batch may hold several pages (segments run in parallel); one that
# would start with under 5 s left goes back to the queue for a fresh invocation instead of
# running past this one's deadline.
PAGE_TIME_LIMIT = 5
