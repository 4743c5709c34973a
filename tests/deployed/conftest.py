"""The deployed stack's suite (`make test-deployed`): everything over HTTP to what was deployed.

Independent of tests/conftest.py (pytest runs it with `--confcutdir tests/deployed`): no
emulator, no handler in this process. devtools/backends/ministack.py deploys the stage into MiniStack and
names the target in `DEPLOYED_TARGET` (a JSON file: API URL, endpoint, API keys, MiniStack's log).
Plain `make test` does not collect this directory (tests/conftest.py's collect_ignore).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import Api, Mailbox, Target


@pytest.fixture(scope="session")
def target() -> Target:
    path = os.environ.get("DEPLOYED_TARGET")
    if not path:
        pytest.skip("no deployed stack: run `make test-deployed` (DEPLOYED_TARGET names the deployment)")
    return Target(**{k: v for k, v in json.loads(Path(path).read_text()).items() if k in Target.__annotations__})


@pytest.fixture(scope="session")
def api(target: Target) -> Api:
    return Api(target.api_url, target.keys)


@pytest.fixture(scope="session")
def aws(target: Target) -> Any:
    """A boto3 client of the deployed stack's account (an operator's view, for S3, SQS and Lambda)."""

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=target.endpoint, region_name="us-east-1")

    return make


@pytest.fixture(scope="session")
def mailbox(target: Target) -> Mailbox:
    return Mailbox(target.endpoint)


@pytest.fixture(scope="session")
def timings(target: Target) -> Any:
    """Measurements the run reports at its end (POST to ready, cold and warm)."""
    found: dict[str, float] = {}
    yield found
    out = Path(target.log).with_name("timings.json")
    out.write_text(json.dumps(found, indent=2))
    print(f"\ndeployed-stack timings: {json.dumps(found)}")
