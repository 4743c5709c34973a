"""The environment variables a stage gets from `.chalice/config.json` (one source of truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def stage_environment(stage: str) -> dict[str, str]:
    """Global then per-stage environment variables of `stage`."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return env


def default_drift(config: dict[str, Any] | None = None) -> list[str]:
    """Where `.chalice/config.json` disagrees with the settings' schema (chalicelib/platform/config.py).

    Its top level may only repeat a default (the schema's DEFAULTS or EXPORTED) with the same
    value; a stage may override any known setting, and nothing else (a misspelt name would be
    exported and never read). Names the schema derives from RESOURCE_PREFIX may be set too.
    """
    from chalicelib.platform.config import DEFAULTS, DERIVED, EXPORTED

    config = config if config is not None else json.loads((ROOT / ".chalice" / "config.json").read_text())
    schema = {**DEFAULTS, **EXPORTED}
    problems = [
        f"environment_variables.{name} = {value!r}, but its default is {schema[name]!r}"
        if name in schema
        else f"environment_variables.{name} is no setting of chalicelib/platform/config.py"
        for name, value in config.get("environment_variables", {}).items()
        if schema.get(name) != value
    ]
    for stage, values in config.get("stages", {}).items():
        problems += [
            f"stages.{stage}.environment_variables.{name} is no setting of chalicelib/platform/config.py"
            for name in values.get("environment_variables", {})
            if name not in schema and name not in DERIVED
        ]
    return problems
