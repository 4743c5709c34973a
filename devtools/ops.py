"""Operations CLI: queue depths, DLQ redrive, task records, API keys.

Uses the same settings and AWS endpoint as the app (STAGE, AWS_ENDPOINT_URL, …):
  python -m devtools.ops queues
  python -m devtools.ops redrive media
  python -m devtools.ops reconcile
  python -m devtools.ops tasks --status FAILURE --name mail.new_book
  python -m devtools.ops create-api-key alice [--admin]

With `--stage local` and no AWS_ENDPOINT_URL it talks to the emulator of a running
`make run` (http://127.0.0.1:$EMULATOR_PORT, default 4566) and refuses when none answers:
a local command never reaches real AWS by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from devtools.stage import stage_environment

LOCAL_STAGE = "local"


class OpsError(Exception):
    """A problem the user can fix, reported as one line (no traceback)."""


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _answers(endpoint: str) -> bool:
    try:
        requests.get(endpoint, timeout=2)
    except requests.RequestException:
        return False
    return True


def use_local_emulator() -> str:
    """Point the local stage at `make run`'s emulator; refuse when none is running."""
    port = os.environ.get("EMULATOR_PORT", "4566")
    endpoint = f"http://127.0.0.1:{port}"
    if not _answers(endpoint):
        raise OpsError(
            f"--stage local needs a running local emulator, and none answers on {endpoint}. "
            "Start `make run` (with the same EMULATOR_PORT) in another terminal, or set AWS_ENDPOINT_URL "
            "to your emulator or LocalStack. Nothing was changed; real AWS was not contacted."
        )
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: the AWS call failed: {exc}", file=sys.stderr)
        return 1


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.ops", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "local"), help="stage in .chalice/config.json")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("queues", help="visible / in-flight / delayed counts of every queue and DLQ")
    redrive = commands.add_parser("redrive", help="move a DLQ's messages back to its queue")
    redrive.add_argument("queue", help="media or default")
    commands.add_parser("reconcile", help="mark FAILURE the tasks whose messages the redrive policy moved to a DLQ")
    tasks = commands.add_parser("tasks", help="list task records")
    tasks.add_argument("--status")
    tasks.add_argument("--name")
    tasks.add_argument("--limit", type=int, default=20)
    key = commands.add_parser("create-api-key", help="create an API key and print it once")
    key.add_argument("user")
    key.add_argument("--admin", action="store_true")
    args = parser.parse_args(argv)

    if args.stage == LOCAL_STAGE and not os.environ.get("AWS_ENDPOINT_URL"):
        use_local_emulator()
    for name, value in stage_environment(args.stage).items():
        os.environ.setdefault(name, value)

    from chalicelib.ops import queues, task_query
    from chalicelib.platform.schemas import Page

    if args.command == "queues":
        _print(queues.overview())
    elif args.command == "redrive":
        _print(queues.redrive(args.queue))
    elif args.command == "reconcile":
        from chalicelib.tasks.reconcile import reconcile_dead_letters

        _print(reconcile_dead_letters())
    elif args.command == "tasks":
        _print(task_query.list_records(args.status, args.name, Page(limit=args.limit)))
    elif args.command == "create-api-key":
        from infra.local import create_api_key

        print(create_api_key(args.user, admin=args.admin))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
