"""How `make test-deployed` starts MiniStack and packages the one stack (pure logic, no MiniStack)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools import stack
from devtools.backends import ministack
from infra.lambda_build import RUNTIME_PYTHON

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests


def test_ministack_starts_on_loopback_with_local_workers_and_without_the_callers_aws_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    env = ministack.ministack_environment(4711, tmp_path)
    assert (env["GATEWAY_PORT"], env["BIND_HOST"]) == ("4711", "127.0.0.1")
    assert (env["LAMBDA_EXECUTOR"], env["IOT_MTLS_PORT"], env["PERSIST_STATE"]) == ("local", "0", "0")
    assert "AWS_ENDPOINT_URL" not in env and env["AWS_SECRET_ACCESS_KEY"] == "test"


def test_deploys_reach_ministack_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://elsewhere")
    monkeypatch.setenv("AWS_PROFILE", "production")
    env = ministack.deploy_environment("http://127.0.0.1:4711")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4711"
    assert not [k for k in env if k.startswith("AWS_") and k not in {"AWS_ENDPOINT_URL", *ministack.CREDENTIALS}]


def test_ministack_venv_is_per_runtime_python_and_pins_the_patched_release() -> None:
    """Its interpreter runs the functions: the zip's compiled wheels need the runtime's version."""
    pins = ministack.REQUIREMENTS.read_text()
    assert "ministack[full]==1.5.33" in pins
    patches = (Path(ministack.__file__).parent / "ministack_patches.py").read_text()
    assert 'PINNED = "1.5.33"' in patches
    boto3 = re.search(r"^boto3==([\d.]+)$", pins, re.M)
    assert boto3, "boto3 (runtime-provided on Lambda) must be in MiniStack's venv"
    assert RUNTIME_PYTHON >= (3, 12)


def test_packaged_template_points_every_function_at_the_uploaded_zip() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "Api": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./deployment.zip"}},
            "Kept": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://other/key.zip"}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        }
    }
    out = stack.packaged(template, "artifacts", "bookshelf-dev/abc.zip")
    assert out["Resources"]["Api"]["Properties"]["CodeUri"] == "s3://artifacts/bookshelf-dev/abc.zip"
    assert out["Resources"]["Kept"]["Properties"]["CodeUri"] == "s3://other/key.zip"
    assert template["Resources"]["Api"]["Properties"]["CodeUri"] == "./deployment.zip"  # not mutated
    assert json.dumps(out["Resources"]["Table"]) == '{"Type": "AWS::DynamoDB::Table", "Properties": {}}'
