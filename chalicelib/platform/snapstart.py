"""Lambda SnapStart: what init leaves behind must be safe to copy into many environments.

A restored snapshot resumes every environment from one memory image, so anything init
created is shared by them all: boto3 clients (their connections and the credentials they
read at init) and PynamoDB's per-model connections are dropped, so each environment makes
its own on first use; Python's `random` is re-seeded, or every copy would draw the same
numbers (jitter included). `uuid.uuid4` and `secrets` read the OS's randomness per call and
need nothing. The runtime provides `snapshot_restore_py` (python3.12 and later); elsewhere
the hooks are not registered and `after_restore` is only called by tests.
"""

from __future__ import annotations

import importlib
import random
from typing import Any

from pynamodb.models import Model

from chalicelib.platform import aws


def _models(base: type[Model]) -> list[type[Model]]:
    found: list[type[Model]] = []
    for sub in base.__subclasses__():
        found += [sub, *_models(sub)]
    return found


def drop_connections() -> None:
    """Forget every cached client, their session and PynamoDB's connections: the next use makes new ones."""
    aws.reset()
    for model in _models(Model):
        model._connection = None


def after_restore() -> None:
    drop_connections()
    random.seed()  # from os.urandom


def before_snapshot() -> None:
    drop_connections()  # no open socket or init-time credential in the image


def install() -> bool:
    """Register the hooks with the Lambda runtime; False where there is no runtime to call them."""
    try:  # by name: it ships no type information
        hooks: Any = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    return True
