"""Tasks that exist only for the benchmarks (registered when this module is imported)."""

from __future__ import annotations

import time

from chalicelib.tasks.decorator import task


@task("bench.noop")
def noop(n: int) -> int:
    """Nothing: measures the task machinery itself."""
    return n


@task("bench.mail_like")
def mail_like(n: int) -> int:
    """Waits like an SES call (about 40 ms), on the default queue."""
    time.sleep(0.04)
    return n
