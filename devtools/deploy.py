"""`chalice deploy` with everything around it: resources first, then the functions.

`chalice deploy` creates functions, roles, the REST API and the event source mappings,
not tables, queues or alarms. This creates the stage's resources idempotently
(devtools/resources.py), the dashboard and alarms (devtools/infra.py), then runs
`chalice deploy`. Works against AWS, LocalStack or the embedded emulator:

  python -m devtools.deploy --stage dev
  python -m devtools.deploy --stage local --endpoint http://localhost:4566

The one-stack alternative for AWS is `make package` + `aws cloudformation deploy`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from devtools.infra import apply_gateway_responses, apply_monitoring, use_stage
from devtools.stage import ROOT


def deploy(stage: str, project: Path = ROOT, endpoint: str | None = None) -> dict[str, Any]:
    """Deploy `project` as `stage`; returns chalice's record of what it deployed."""
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    use_stage(stage)
    from devtools.resources import create_all

    create_all()
    monitoring = apply_monitoring()
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run([str(chalice), "deploy", "--stage", stage], cwd=project, env=dict(os.environ), check=True)
    deployed = json.loads((project / ".chalice" / "deployed" / f"{stage}.json").read_text())
    apply_gateway_responses(deployed["resources"], stage)  # API Gateway's own errors in the app's error shape
    return {"monitoring": monitoring, "resources": deployed["resources"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="LocalStack or emulator URL")
    parser.add_argument("--project", type=Path, default=ROOT, help="the Chalice project to deploy")
    args = parser.parse_args(argv)
    result = deploy(args.stage, args.project.resolve(), args.endpoint)
    for resource in result["resources"]:
        print(f"{resource['resource_type']:>22}  {resource['name']}")
    print(f"dashboard {result['monitoring']['dashboard']}; alarms: {', '.join(result['monitoring']['alarms'])}")


if __name__ == "__main__":
    main()
