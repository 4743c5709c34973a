"""The Lambda artefact: chalice under the runtime's Python, on dependencies resolved for the runtime.

Chalice takes the Lambda runtime from the interpreter that runs it, so `chalice package` and
`chalice deploy` run in a virtualenv of their own on Python 3.13 (`.venv-build`, made from
requirements-build.txt + requirements.txt on first use), while the project stays on 3.11.

The dependencies do not come from chalice's packager, for two reasons: it accepts a wheel it
compiled on the build host (tag `linux_x86_64`, linked against the host's libraries: that is
how a Pillow without WebP shipped), and it bundles the whole closure, botocore (21 MB) included,
which the runtime already provides. Instead pip resolves requirements.txt for the runtime's
platform (`--platform manylinux_2_x_<cpu> --python-version 3.13 --only-binary=:all:`: a missing
wheel fails the build instead of compiling), the distributions the runtime provides are dropped,
and the rest is installed into a directory that chalice receives as the project's `vendor/`
(chalice's documented way to ship prebuilt files) in a staged copy of the project with no
requirements.txt. `.chalice/` is the project's own (a symlink), so settings, deployed state
and chalice's package cache stay where they were.

  python -m devtools.lambda_build package build/out     # any chalice command, as chalice takes it
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devtools import pythons
from devtools.stage import ROOT

#: The Lambda runtime: python3.13 on Amazon Linux 2023 (docs/DEPLOY.md says why).
RUNTIME_PYTHON = (3, 13)
RUNTIME = "python{}.{}".format(*RUNTIME_PYTHON)
ABI = "cp{}{}".format(*RUNTIME_PYTHON)
#: glibc of Amazon Linux 2023, which the python3.12+ runtimes run on.
RUNTIME_GLIBC = (2, 34)
#: Lambda's architecture names to the CPU names in wheel tags.
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
#: What the python3.13 runtime provides (boto3 and its dependencies, in /var/runtime): left out of
#: the zip. Safe because nothing in requirements.txt pins them tighter than the runtime's SDK
#: (pynamodb wants botocore >= 1.12, Powertools jmespath >= 1.0.1), and shipping botocore without
#: boto3, as before, paired the runtime's boto3 with another botocore.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})
BUILD_REQUIREMENTS = ROOT / "requirements-build.txt"
BUILD_VENV = ROOT / ".venv-build"


def runtime_python() -> str:
    """An interpreter of the runtime's version (for the venv, and to import the zip's code)."""
    return pythons.find_python(RUNTIME_PYTHON, variable="BUILD_PYTHON", exact=True, purpose="The Lambda build")


def architecture(project: Path = ROOT) -> str:
    """The functions' architecture: `lambda_architecture` in .chalice/config.json (chalice's default x86_64)."""
    config = json.loads((project / ".chalice" / "config.json").read_text())
    return str(config.get("lambda_architecture", "x86_64"))


def build_python() -> Path:
    """The build venv's python (chalice 1.34 and the app's requirements on Python 3.13)."""
    requirements = [BUILD_REQUIREMENTS, ROOT / "requirements.txt"]
    return pythons.cached_venv(BUILD_VENV, requirements, runtime_python, f"the Lambda build (chalice on {RUNTIME})")


def platforms(arch: str) -> list[str]:
    """pip's --platform values for the runtime: every manylinux glibc up to the runtime's.

    pip takes each --platform literally (no lower glibc implied), as chalice's packager notes;
    the legacy manylinux2014 alias brings manylinux2010 and manylinux1 with it.
    """
    machine = MACHINES[arch]
    major, minor = RUNTIME_GLIBC
    return [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)] + [f"manylinux2014_{machine}"]


def _pip(python: Path, arch: str) -> list[str]:
    targets = [arg for platform in platforms(arch) for arg in ("--platform", platform)]
    return [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",  # a wheel or a failed build; never a compile on this host
        *targets,
        "--implementation",
        "cp",
        "--python-version",
        "{}.{}".format(*RUNTIME_PYTHON),
        "--abi",
        ABI,
    ]


def vendor(requirements: Path, arch: str) -> Path:
    """The runtime's dependencies for `requirements`, minus what the runtime provides; cached by content."""
    key = json.dumps([requirements.read_text(), RUNTIME, arch, RUNTIME_GLIBC, sorted(RUNTIME_PROVIDED)])
    target = BUILD_VENV / f"lambda-vendor-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    python = build_python()
    with pythons.file_lock(BUILD_VENV / "lambda-vendor.lock"):
        if target.is_dir():
            return target
        with tempfile.TemporaryDirectory(dir=BUILD_VENV) as scratch:
            resolved = _resolve(python, arch, requirements, Path(scratch))
            keep = sorted(f"{name}=={v}" for name, v in resolved.items() if _canonical(name) not in RUNTIME_PROVIDED)
            left_out = sorted(f"{name} {v}" for name, v in resolved.items() if _canonical(name) in RUNTIME_PROVIDED)
            staging = Path(scratch) / "vendor"
            # --no-compile: the .pyc would not match the sources' zip timestamps (2 s resolution) anyway.
            install = [*_pip(python, arch), "--no-deps", "--no-compile", "--target", str(staging)]
            subprocess.run([*install, *keep], check=True)
            shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts with this host's shebang
            print(f"Lambda dependencies for {RUNTIME} {arch}: {', '.join(keep)}", flush=True)
            print(f"left out (the runtime provides them): {', '.join(left_out) or 'nothing'}", flush=True)
            for old in BUILD_VENV.glob("lambda-vendor-*"):
                if old.is_dir():
                    shutil.rmtree(old)
            staging.rename(target)
    return target


def _resolve(python: Path, arch: str, requirements: Path, scratch: Path) -> dict[str, str]:
    """Every distribution requirements.txt needs on the runtime, by name, with its version."""
    report = scratch / "report.json"
    resolve = [*_pip(python, arch), "--dry-run", "--ignore-installed", "--report", str(report)]
    subprocess.run([*resolve, "--target", str(scratch / "resolve"), "-r", str(requirements)], check=True)
    return {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def stage(project: Path, vendor_dir: Path) -> Path:
    """A copy of the project's code with the resolved dependencies as `vendor/` and no requirements.txt."""
    staged = project / "build" / "lambda-project"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    shutil.copy2(project / "app.py", staged)
    shutil.copytree(project / "chalicelib", staged / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (staged / ".chalice").symlink_to((project / ".chalice").resolve())
    (staged / "vendor").symlink_to(vendor_dir)
    return staged


def chalice(args: list[str], project: Path = ROOT, env: dict[str, str] | None = None) -> None:
    """Run `chalice <args>` on the staged project under the runtime's Python."""
    project = project.resolve()
    python = build_python()
    vendor_dir = vendor(project / "requirements.txt", architecture(project))
    base = dict(os.environ if env is None else env)
    for leak in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # nothing of the 3.11 venv reaches chalice
        base.pop(leak, None)
    # No __pycache__ in the staged code: chalice imports app.py before it zips chalicelib/.
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    with pythons.file_lock(project / "build" / "lambda-project.lock"):
        staged = stage(project, vendor_dir)
        command = [str(python.parent / "chalice"), "--project-dir", str(staged), *args]
        subprocess.run(command, cwd=staged, env=base, check=True)


def main(argv: list[str] | None = None) -> None:
    chalice(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
