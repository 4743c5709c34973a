"""What `bench.runtime`'s sandboxes load: the app's default worker with the bench tasks registered.

A sandbox imports its handler's module in a process of its own, so tasks registered by the
benchmark's process (`bench.tasks`) are unknown there unless the handler's module imports them.
"""

from __future__ import annotations

import bench.tasks  # noqa: F401  (registers bench.noop in the sandbox's process)
from app import default_worker

__all__ = ["default_worker"]
