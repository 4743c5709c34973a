"""A popular author's fan-out against a running `make run`, checked end to end.

  python -m devtools.fanout_trial [--subscribers 20000] [--timeout-s 1800]

Seeds N confirmed subscribers of a fresh author straight into the Subscribers table
(`devtools.seed`, `BatchWriteItem`), then adds a book by that author through the API
with the development key, and follows `GET /tasks/{id}` until the fan-out is complete.
It then checks what a user would: every subscriber got exactly one mail and nobody else
did (the emulator's `/_aws/ses`), and the default worker's sandboxes hit no timeout
(`GET /queues`, the runner's counters). Exit status 0 only if all of that holds.

The mail goes out at the stage's SES rate (`SES_MAX_SEND_RATE`, 20/s for `local`: 20,000
mails take ~17 minutes); start `make run` with e.g. `SES_MAX_SEND_RATE=1000` to see the
chain of pages at full speed. Local stage only: it refuses when no emulator answers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from devtools.ops import OpsError, use_local_emulator
from devtools.seed import seed_subscribers
from infra.stage import ROOT, stage_environment

STAGE = "local"
OWNER = "fanout-trial"


class Api:
    """The local API with the development key `make run` saved."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.session = base.rstrip("/"), requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.session.request(method, f"{self.base}{path}", json=body, timeout=60)
        if answer.status_code >= 400:
            raise OpsError(f"{method} {path} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()


def _timeouts(api: Api) -> tuple[int, int]:
    """(invocations, timeouts) of the default queue's function, from the runner's counters."""
    for queue in api.call("GET", "/queues")["queues"]:
        if queue["queue"] == "default":
            runtime = queue.get("runtime") or {}
            return int(runtime.get("invocations", 0)), int(runtime.get("timeouts", 0))
    raise OpsError("GET /queues has no default queue")


def _mail_counts(endpoint: str, title: str) -> Counter[str]:
    messages = requests.get(f"{endpoint}/_aws/ses", timeout=300).json()["messages"]
    marker = f"New book: {title}"
    return Counter(
        to
        for message in messages
        if marker in (message.get("RawData") or message.get("Subject") or "")[:4000]
        for to in set(message["Destination"]["ToAddresses"])
    )


def trial(api: Api, endpoint: str, subscribers: int, timeout_s: float) -> int:
    author, title = f"Trial Author {uuid.uuid4().hex[:6]}", f"Trial {uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    emails = seed_subscribers(author, OWNER, confirmed=subscribers)
    print(f"seeded {subscribers:,} confirmed subscribers of {author!r} in {time.monotonic() - started:.1f}s")
    invocations0, timeouts0 = _timeouts(api)
    started = time.monotonic()
    created = api.call("POST", "/books", {"title": title, "authors": [author]})
    root = created["tasks"][-1]
    print(f"POST /books → book {created['book']['id']}; its fan-out task is {root}")
    mail: dict[str, Any] = {}
    while time.monotonic() - started < timeout_s:
        time.sleep(5)
        mail = api.call("GET", f"/tasks/{root}").get("mail") or {}
        print(
            f"  {time.monotonic() - started:6.0f}s mailed {mail.get('mailed', 0):,} failed {mail.get('failed', 0)}"
            f" pending {mail.get('pending', 0)} pages {mail.get('pages', 0)}",
            flush=True,
        )
        if mail.get("complete") and not mail.get("pending"):
            break
    elapsed = time.monotonic() - started
    invocations, timeouts = _timeouts(api)
    counts = _mail_counts(endpoint, title)
    twice = sum(1 for n in counts.values() if n > 1)
    missing = len(set(emails) - set(counts))
    strangers = len(set(counts) - set(emails))
    print(
        f"fan-out {'complete' if mail.get('complete') else 'NOT complete'} in {elapsed:.0f}s: "
        f"{len(counts):,} addresses mailed, {missing} missing, {twice} mailed twice, {strangers} not subscribed; "
        f"default worker: {invocations - invocations0} invocations, {timeouts - timeouts0} timed out"
    )
    ok = bool(mail.get("complete")) and not (missing or twice or strangers or timeouts - timeouts0)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.fanout_trial", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="give up after this long")
    args = parser.parse_args(argv)
    try:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or use_local_emulator()
        for name, value in stage_environment(STAGE).items():
            os.environ.setdefault(name, value)
        key_file = Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local") / "api-key"
        if not key_file.exists():
            raise OpsError(f"no development key at {key_file}: start `make run` first")
        api = Api(f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}", key_file.read_text().strip())
        return trial(api, endpoint, args.subscribers, args.timeout_s)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
