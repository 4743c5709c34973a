"""Hooks run when a task reaches a final state (the canvas registers its link and chord hook).

A registry, so the executor calls them without importing what they import (dispatch
imports the executor): hooks are added by the module that defines them, at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.states import TaskStatus


@dataclass(frozen=True)
class Final:
    """A task's final state as its hooks see it: SUCCESS with `result`, FAILURE or REVOKED with `error`."""

    status: TaskStatus
    result: Any = None
    error: str | None = None


FinalHook = Callable[[Envelope, Final], None]
_HOOKS: list[FinalHook] = []


def on_final(hook: FinalHook) -> FinalHook:
    """Register `hook` (once); it must be idempotent: a duplicate delivery calls it again."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def run_final_hooks(env: Envelope, final: Final) -> None:
    """Call every hook; an exception propagates (the caller keeps the message to try again)."""
    for hook in list(_HOOKS):
        hook(env, final)
