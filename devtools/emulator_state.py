"""The embedded emulator's state on disk: a snapshot of moto's backends, restored at start.

Chosen over moto's request recorder (`MOTO_ENABLE_RECORDING`, `/moto-api/recorder/...`):
the recorder appends every request, reads and SQS polls included, so its file grows while
`make run` sits idle and a replay re-executes receives and deletes with receipt handles
that no longer exist. A snapshot is the state itself: its size follows the data, and a
restore is one unpickling. A thread takes it when a request may have changed something
(`may_change`: not a read, not an SQS receive), at most every `every` seconds and at most
every 10 times as long as the last snapshot took (so snapshots cost at most a tenth of a
core, and a crash of the emulator loses at most that interval), and once more on a clean stop.
While a snapshot is pickled, requests wait (that keeps it consistent); its size and time for
1,000 books with covers are in bench/README.md § 8. S3 object bodies are part of
it, so its size and time grow with the covers stored.

The snapshot covers the services the app uses (`SERVICES`). Locks inside moto's objects
cannot be pickled; they are saved as fresh locks. While pickling, the interpreter's switch
interval is raised so request threads do not run in between (pickling is C code and keeps
the GIL), which keeps the snapshot consistent; a rare "changed size during iteration"
from a thread that ran anyway is retried.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

log = logging.getLogger("devtools.emulator_state")

SERVICES = ("dynamodb", "s3", "sqs", "ses", "ssm", "secretsmanager")
_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def _nested_dict() -> defaultdict[Any, dict[Any, Any]]:
    """The factory of moto's `defaultdict(lambda: defaultdict(dict))` (a lambda cannot be pickled)."""
    return defaultdict(dict)


def _is_lambda(factory: Any) -> bool:
    return getattr(factory, "__name__", "") == "<lambda>"


def _rebuild_defaultdict(cls: type[defaultdict[Any, Any]], factory: Any) -> defaultdict[Any, Any]:
    """A defaultdict (or moto's subclasses, whose __init__ takes other arguments) with `factory`."""
    obj = cls.__new__(cls)
    defaultdict.__init__(obj, factory)
    return obj


class _Pickler(pickle.Pickler):
    """Pickles moto's backends: locks become new locks, lambda factories named ones, defaultdict subclasses rebuilt."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in _LOCK_TYPES:
            return _LOCK_TYPES[type(obj)], ()
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, defaultdict) and (type(obj) is not defaultdict or _is_lambda(obj.default_factory)):
            factory = obj.default_factory
            if _is_lambda(factory):
                probe = factory()  # type: ignore[misc]
                if not (isinstance(probe, defaultdict) and probe.default_factory is dict):
                    raise pickle.PicklingError(f"cannot snapshot a defaultdict with factory {factory!r}")
                factory = _nested_dict
            state = obj.__dict__ if hasattr(obj, "__dict__") else None
            return _rebuild_defaultdict, (type(obj), factory), state, None, iter(obj.items())
        return NotImplemented


_BACKEND_DICT_FIELDS = {"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"}


def _backends() -> dict[str, dict[str, Any]]:
    """Per service: each account's region backends, and the service-wide attributes of its
    BackendDict (e.g. S3's `bucket_accounts`, without which a restored bucket is invisible
    to CreateBucket and gets replaced by an empty one)."""
    from moto.backends import get_backend

    state: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        backend_dict: Any = get_backend(service)  # type: ignore[call-overload]
        state[service] = {
            "accounts": {account: dict(regions) for account, regions in backend_dict.items()},
            "attributes": {k: v for k, v in vars(backend_dict).items() if k not in _BACKEND_DICT_FIELDS},
        }
    return state


def dumps() -> bytes:
    """The current state of every service in `SERVICES`, pickled."""
    for attempt in range(5):
        previous = sys.getswitchinterval()
        sys.setswitchinterval(30.0)
        try:
            buffer = io.BytesIO()
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(_backends())
            return buffer.getvalue()
        except RuntimeError:
            if attempt == 4:
                raise
        finally:
            sys.setswitchinterval(previous)
    raise AssertionError("unreachable")


def save(path: Path) -> int:
    """Write a snapshot atomically (a crash mid-write keeps the previous one); returns its size."""
    data = dumps()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)


def restore(path: Path) -> bool:
    """Load a snapshot into moto's backends before the server starts; False when there is none."""
    if not path.exists():
        return False
    from moto.backends import get_backend

    state = pickle.loads(path.read_bytes())
    for service, saved in state.items():
        backend_dict: Any = get_backend(service)
        vars(backend_dict).update(saved["attributes"])
        for account, regions in saved["accounts"].items():
            account_backends = backend_dict[account]
            for region, backend in regions.items():
                dict.__setitem__(account_backends, region, backend)
    return True


_READ_PREFIXES = ("Get", "Describe", "List", "Query", "Scan", "BatchGet")


def may_change(method: str, path: str, target: str | None) -> bool:
    """Whether a request may change the emulator's state (a receive counts as a read:
    losing its visibility change on a crash only makes the message come back sooner)."""
    if method in ("GET", "HEAD", "OPTIONS") or path.startswith("/_emulator/"):
        return False
    if target:  # JSON protocols: DynamoDB, SQS, SSM, Secrets Manager
        action = target.rsplit(".", 1)[-1]
        return not (action.startswith(_READ_PREFIXES) or action == "ReceiveMessage")
    return True


class Snapshotter:
    """Saves the state when `changed` is set (checked every `every` seconds or slower), and on `stop()`."""

    def __init__(self, path: Path, every: float, changed: threading.Event | None = None) -> None:
        self.path, self.every = path, every
        self.changed = changed or threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="emulator-snapshot", daemon=True)
        self.last_seconds: float | None = None

    def start(self) -> Snapshotter:
        self._thread.start()
        return self

    def _save(self) -> None:
        started = time.perf_counter()
        try:
            size = save(self.path)
        except Exception:
            log.exception("snapshot of the emulator's state failed; the previous one is kept")
            return
        self.last_seconds = time.perf_counter() - started
        log.debug("state saved: %d bytes in %.3f s", size, self.last_seconds)

    def _loop(self) -> None:
        while not self._stop.wait(max(self.every, 10 * (self.last_seconds or 0.0))):
            if self.changed.is_set():
                self.changed.clear()  # before pickling: a change during it makes the next round save again
                self._save()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._save()
