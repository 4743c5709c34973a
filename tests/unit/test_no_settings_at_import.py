"""No module reads the settings when it is imported: models and clients bind on first use.

So the endpoint, region and resource names may be set after the imports (the tests' per-worker
prefixes, SnapStart's restored environments), and importing the code needs no AWS at all.
Checked in a fresh interpreter with no AWS variable and an unreachable endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs in the fresh interpreter: imports every chalicelib module, then reports what was read.
PROBE = r"""
import importlib, json, os, pathlib, sys

sys.path.insert(0, os.getcwd())
names_read = set()
environ_class = type(os.environ)
original_getitem = environ_class.__getitem__

def recording_getitem(self, key):
    names_read.add(key)
    return original_getitem(self, key)

environ_class.__getitem__ = recording_getitem  # os.environ.get goes through __getitem__ too

from chalicelib.platform import config

modules = []  # by file: chalicelib/tasks is a namespace package, which pkgutil does not walk
for path in sorted(pathlib.Path("chalicelib").rglob("*.py")):
    name = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
    importlib.import_module(name)
    modules.append(name)
environ_class.__getitem__ = original_getitem
cached = config.get_settings.cache_info().currsize

# The variables get_settings reads: every name it asks for (set or not).
import_reads = set(names_read)
names_read.clear()
environ_class.__getitem__ = recording_getitem
config.get_settings.cache_clear()
config.get_settings()
environ_class.__getitem__ = original_getitem
config.get_settings.cache_clear()
settings_names = set(names_read)

# Set after every import: a model's table and region are the settings of its first use.
os.environ.update(RESOURCE_PREFIX="late-prefix", AWS_REGION="eu-west-3")
from chalicelib.tasks.models import TaskRecord
late = {"table_name": TaskRecord.Meta.table_name, "region": TaskRecord.Meta.region}
print(json.dumps({
    "modules": modules,
    "cached": cached,
    "read": sorted(import_reads & settings_names),
    "settings_names": sorted(settings_names),
    "late": late,
}))
"""


def _fresh_import() -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOOKSHELF_"))}
    for name in ("STAGE", "RESOURCE_PREFIX", "APP_NAME"):
        env.pop(name, None)
    # Were anything to call AWS at import, it would find nothing there.
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    return _fresh_import()


def test_importing_every_chalicelib_module_builds_no_settings(report: dict[str, object]) -> None:
    modules = report["modules"]
    assert isinstance(modules, list) and len(modules) > 50  # every module was imported
    assert {"chalicelib.tasks.models", "chalicelib.platform.observability", "chalicelib.ops.audit"} <= set(modules)
    assert report["cached"] == 0, "a module called get_settings() at import"


def test_importing_reads_no_setting_from_the_environment(report: dict[str, object]) -> None:
    """Not the endpoint, the stage or any resource name. The region alone is asked for: PynamoDB
    checks `hasattr(Meta, "region")` when a model is declared, and that answer is cached nowhere."""
    names = report["settings_names"]
    assert isinstance(names, list) and {"AWS_ENDPOINT_URL", "STAGE", "RESOURCE_PREFIX"} <= set(names)
    assert set(map(str, cast("list[Any]", report["read"]))) <= {"AWS_REGION", "AWS_DEFAULT_REGION"}, report["read"]


def test_a_model_takes_its_table_name_from_the_settings_read_on_first_use(report: dict[str, object]) -> None:
    """In the fresh interpreter, not this one: changing this process's environment and settings
    cache raced the threads of the tests beside it (the in-process runner and gateway of an xdist
    worker), which then kept the late prefix and met tables that do not exist."""
    assert report["late"] == {"table_name": "late-prefix-tasks", "region": "eu-west-3"}
