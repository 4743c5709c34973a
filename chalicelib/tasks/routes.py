"""Task routing: which queue each task goes to (Celery's `task_routes`)."""

from __future__ import annotations

DEFAULT_QUEUE = "default"

TASK_ROUTES: dict[str, str] = {
    "covers.resize": "media",
    "covers.ingest_upload": "media",  # S3 sends these to the media queue itself
    "covers.ingest_uploads": "media",
}


def queue_for(task_name: str) -> str:
    """The routing key of the queue that runs `task_name`."""
    return TASK_ROUTES.get(task_name, DEFAULT_QUEUE)
