"""The task framework: Celery-style tasks on SQS and Lambda (declare, dispatch, run, record)."""
