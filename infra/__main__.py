"""Write the stage's merge template, and optionally package it with chalice (`make package`).

python -m infra --stage dev --out build/infra-dev.json
python -m infra --stage dev --package build/package-dev   # + chalice package
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from devtools.stage import ROOT
from infra.cloudformation import build, package
from infra.functions import use_stage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--out", type=Path, help="where to write the merge template (default build/infra-STAGE.json)")
    parser.add_argument("--package", type=Path, metavar="DIR", help="also run chalice package into DIR")
    args = parser.parse_args(argv)
    use_stage(args.stage)
    out = (args.out or ROOT / "build" / f"infra-{args.stage}.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(build(args.stage), indent=2) + "\n")
    print(f"wrote {out}")
    if args.package:
        print(f"packaged {package(args.stage, args.package.resolve(), out)}")


if __name__ == "__main__":
    main()
