"""`make run`'s API process: the local API Gateway serving the app, beside the runner.

  python -m devtools.local_api --runner-stats http://127.0.0.1:<port>/stats --stage local --port 8000

The app asks whoever runs it for the counters of its functions (`chalicelib.ops.local_runtime`):
here that is the runner's `/stats` (`RunnerStats`), registered before the gateway loads the app,
so `GET /queues` shows each queue's `runtime` entry and the dashboard's Workers panel its figures.
Every other argument is the gateway's (devtools/gateway/server.py).
"""

from __future__ import annotations

import argparse

from chalicelib.ops import local_runtime
from devtools.gateway import server
from devtools.runtime.stats_client import RunnerStats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runner-stats", metavar="URL", help="the runner's counters (GET URL)")
    args, gateway_args = parser.parse_known_args(argv)
    if args.runner_stats:
        local_runtime.use(RunnerStats(args.runner_stats))
    server.main(gateway_args)


if __name__ == "__main__":
    main()
