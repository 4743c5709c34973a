"""Every benchmark with quick settings (`make bench`): a few minutes on 2 cores.

  python -m bench.run_all [--only thumbnails,cold_start]

Each benchmark is also runnable alone with fuller settings (see bench/README.md). A full run
ends with the summary of goals (bench/summary.py), printed and written into bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench import summary
from bench.common import ROOT, save

# (module, quick arguments), in the order of issue 5.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("api_latency", ["--requests", "10"]),
    ("thumbnails", ["--repeat", "3", "--rounds", "2"]),
    ("queue_isolation", ["--rounds", "1", "--backlog", "1000"]),
    ("api_calls", ["--books", "3"]),
    ("cold_start", ["--runs", "3"]),
    ("runner_throughput", ["--messages", "200"]),
    ("api_concurrency", ["--clients", "100", "--requests", "2"]),
    ("fanout", ["--subscribers", "1000", "--old", "200"]),
    ("runtime", ["--invocations", "30", "--cold-starts", "3", "--books", "1000"]),
    ("task_index", ["--records", "10000", "--repeat", "1"]),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else {name for name, _ in BENCHMARKS}
    unknown = chosen - {name for name, _ in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    timings = []
    for name, quick in BENCHMARKS:
        if name not in chosen:
            continue
        print(f"\n## bench.{name} {' '.join(quick)}", flush=True)
        started = time.perf_counter()
        # A fresh interpreter each: settings, clients and models are bound to one emulator at import.
        subprocess.run([sys.executable, "-m", f"bench.{name}", *quick], cwd=ROOT, check=True)
        timings.append((name, time.perf_counter() - started))
    print("\n## wall time\n")
    for name, seconds in timings:
        print(f"- {name}: {seconds:.0f} s")
    print(f"- total: {sum(s for _, s in timings):.0f} s")
    if not args.only:  # a partial run would mix today's figures with an older run's
        save("run_all", {"wall_seconds": dict(timings), "load_average": os.getloadavg()})
        print("\n## summary (also in bench/README.md)\n")
        print(summary.write())


if __name__ == "__main__":
    main()
