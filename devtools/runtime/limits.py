"""Each function's Lambda limits as `chalice deploy` would set them, read from `.chalice/config.json`.

Chalice's own `Config` does the lookup (function, then stage, then top level), so the local
runtime cannot disagree with a deployment about which value wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT

from infra.stage import ROOT


@dataclass(frozen=True)
class FunctionLimits:
    """The timeout and memory size a Lambda function runs with."""

    timeout_seconds: int
    memory_mb: int


def function_limits(function_name: str, stage: str, config_path: Path | None = None) -> FunctionLimits:
    """The limits of `function_name` in `stage`, with Chalice's defaults (60 s, 128 MB) where unset."""
    path = config_path or ROOT / ".chalice" / "config.json"
    config = Config(chalice_stage=stage, function_name=function_name, config_from_disk=json.loads(path.read_text()))
    return FunctionLimits(
        timeout_seconds=int(config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT),
        memory_mb=int(config.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE),
    )
