"""Interpreters besides the project's Python 3.11, and cached virtualenvs on them.

LocalStack needs Python >= 3.12 and the Lambda build needs exactly the runtime's Python (chalice
takes the Lambda runtime from the interpreter that runs it); the project itself stays on 3.11.
Both find their interpreter and keep their virtualenv the same way, here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class PythonNotFound(RuntimeError):
    """No interpreter of the version asked for; the message says how to get one."""


def find_python(version: tuple[int, int], *, variable: str, exact: bool = False, purpose: str = "this") -> str:
    """A Python of `version` (or newer unless `exact`): $variable, pythonX.Y on PATH, or pyenv's."""
    major, minor = version
    wanted = [version] if exact else [(major, m) for m in range(minor + 6, minor - 1, -1)]
    candidates = [os.environ.get(variable, "")]
    candidates += [shutil.which(f"python{a}.{b}") or "" for a, b in wanted]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        for a, b in wanted:
            candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{a}.{b}.*"), reverse=True)]
    test = "sys.version_info[:2] == {v}" if exact else "sys.version_info >= {v}"
    check = f"import sys; sys.exit(0 if {test.format(v=version)} else 1)"
    for candidate in (c for c in candidates if c and Path(c).exists()):
        # Quiet: a pyenv shim for a version that is not selected prints a page of advice and fails.
        probe = subprocess.run([candidate, "-c", check], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            return candidate
    needed = f"Python {'' if exact else '>= '}{major}.{minor}"
    raise PythonNotFound(
        f"{purpose} needs {needed} and none was found: install one (e.g. pyenv install {major}.{minor}) "
        f"or set {variable} to its interpreter"
    )


def cached_venv(venv: Path, requirements: list[Path], python: Callable[[], str], label: str) -> Path:
    """The venv's python with `requirements` installed, (re)installed only when they change.

    `python()` finds the interpreter that makes the venv, only when it does not exist yet. A lock
    file beside the venv keeps two runs (or two clones sharing a cache) from installing at once.
    """
    digest = hashlib.sha256(b"".join(r.read_bytes() for r in requirements)).hexdigest()[:16]
    stamp = venv / f".installed-{digest}"
    with file_lock(venv.with_name(venv.name + ".lock")):
        if stamp.exists():
            return venv / "bin" / "python"
        began = time.monotonic()
        print(f"installing {label} from PyPI into {venv} (once; kept for the next runs)", flush=True)
        if not (venv / "bin" / "python").exists():
            subprocess.run([python(), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *(arg for r in requirements for arg in ("-r", str(r)))], check=True)
        for old in venv.glob(".installed-*"):
            old.unlink()
        stamp.touch()
        print(f"{label} installed in {time.monotonic() - began:.0f}s", flush=True)
    return venv / "bin" / "python"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing): one build or install at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
