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
from typing import Any

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
#: What the runtime provides (boto3 and botocore with their dependencies, in /var/runtime), left
#: out of the zip, each with the oldest version assumed there. AWS publishes no fixed version (it
#: varies with the region and runtime updates; docs: "Runtime-included SDK versions"); these floors
#: are well below what python3.12/3.13 have carried since launch. The build fails if a bundled
#: package asks for more (today pynamodb wants botocore >= 1.12.54). Shipping botocore without
#: boto3, as before, paired the runtime's boto3 with another botocore. jmespath stays in the zip:
#: Powertools needs >= 1.0.1 itself, while the runtime's copy only has to satisfy botocore.
RUNTIME_PROVIDED = {
    "boto3": "1.34.0",
    "botocore": "1.34.0",
    "s3transfer": "0.10.0",
    "urllib3": "1.26.18",
    "python-dateutil": "2.8.2",
    "six": "1.16.0",
}
#: Pure-Python distributions published as sdists only (pyvips 3: its libvips comes as the
#: pyvips-binary wheel). Each is built here into a wheel that must come out `py3-none-any`
#: (nothing compiled), then offered to the resolver with --find-links.
PURE_SDISTS = {"pyvips"}
#: How the shipped .pyc are validated (`compile_bytecode`); part of the vendor cache's key.
BYTECODE = "unchecked-hash"
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


def pure_wheels(python: Path, requirements: Path, folder: Path) -> Path:
    """Wheels of the PURE_SDISTS pinned in `requirements`, in `folder`; refuses any that is not pure."""
    from packaging.requirements import Requirement

    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    pins = [line for line in lines if line and _canonical(Requirement(line).name) in PURE_SDISTS]
    if pins:
        build = [str(python), "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps"]
        subprocess.run([*build, "--no-binary=:all:", "--wheel-dir", str(folder), *pins], check=True)
    for wheel in folder.glob("*.whl"):
        if not wheel.name.endswith("-py3-none-any.whl"):
            raise SystemExit(f"{wheel.name}: built from an sdist but not pure Python; it cannot ship")
    return folder


def _pip(python: Path, arch: str, find_links: Path | None = None) -> list[str]:
    targets = [arg for platform in platforms(arch) for arg in ("--platform", platform)]
    links = ["--find-links", str(find_links)] if find_links else []
    return [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *links,
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
    key = json.dumps([requirements.read_text(), RUNTIME, arch, RUNTIME_GLIBC, RUNTIME_PROVIDED, BYTECODE])
    target = BUILD_VENV / f"lambda-vendor-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    python = build_python()
    with pythons.file_lock(BUILD_VENV / "lambda-vendor.lock"):
        if target.is_dir():
            return target
        with tempfile.TemporaryDirectory(dir=BUILD_VENV) as scratch:
            links = pure_wheels(python, requirements, Path(scratch) / "pure")
            resolved = _resolve(python, arch, requirements, Path(scratch), links)
            keep = sorted(f"{name}=={v}" for name, v in resolved.items() if _canonical(name) not in RUNTIME_PROVIDED)
            left_out = sorted(f"{name} {v}" for name, v in resolved.items() if _canonical(name) in RUNTIME_PROVIDED)
            staging = Path(scratch) / "vendor"
            # --no-compile: pip's .pyc would be checked against the sources' zip timestamps (2 s
            # resolution) and found stale; compile_bytecode writes ones that are never checked.
            install = [*_pip(python, arch, links), "--no-deps", "--no-compile", "--target", str(staging)]
            subprocess.run([*install, *keep], check=True)
            shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts with this host's shebang
            compile_bytecode(python, [staging])
            print(f"Lambda dependencies for {RUNTIME} {arch}: {', '.join(keep)}", flush=True)
            print(f"left out (the runtime provides them): {', '.join(left_out) or 'nothing'}", flush=True)
            for old in BUILD_VENV.glob("lambda-vendor-*"):
                if old.is_dir():
                    shutil.rmtree(old)
            staging.rename(target)
    return target


def compile_bytecode(python: Path, paths: list[Path]) -> None:
    """Write each module's .pyc for the runtime's Python beside it, to ship in the zip.

    /var/task is read-only, so without them Python compiles every module it imports at every
    cold start: 815 ms of CPU for `import app` instead of 351 ms (bench/README.md §5).
    `unchecked-hash` (PEP 552): Python uses the .pyc without comparing it to the source, whose
    mtime the zip keeps to 2 s only; safe because these trees are written once and never edited.
    """
    command = [str(python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", BYTECODE]
    subprocess.run([*command, *(str(p) for p in paths)], check=True)


def _resolve(python: Path, arch: str, requirements: Path, scratch: Path, links: Path) -> dict[str, str]:
    """Every distribution requirements.txt needs on the runtime, by name, with its version."""
    report = scratch / "report.json"
    resolve = [*_pip(python, arch, links), "--dry-run", "--ignore-installed", "--report", str(report)]
    subprocess.run([*resolve, "--target", str(scratch / "resolve"), "-r", str(requirements)], check=True)
    installs = json.loads(report.read_text())["install"]
    if unmet := needs_beyond_runtime([i["metadata"] for i in installs]):
        raise SystemExit(
            f"{'; '.join(unmet)}: more than the runtime is assumed to provide. Raise the floor in "
            "RUNTIME_PROVIDED (after checking the runtime's version) or bundle the package"
        )
    return {i["metadata"]["name"]: i["metadata"]["version"] for i in installs}


def needs_beyond_runtime(metadata: list[dict[str, Any]]) -> list[str]:
    """Bundled packages' requirements on a runtime-provided one that its assumed floor does not meet.

    `metadata` is pip's installation report's per-package metadata (name, requires_dist).
    """
    from packaging.requirements import Requirement

    marker_env = {"python_version": "{}.{}".format(*RUNTIME_PYTHON), "extra": ""}
    unmet = []
    for package in metadata:
        if _canonical(package["name"]) in RUNTIME_PROVIDED:
            continue
        for line in package.get("requires_dist", []):
            needed = Requirement(line)
            floor = RUNTIME_PROVIDED.get(_canonical(needed.name))
            applies = needed.marker is None or needed.marker.evaluate(marker_env)
            if floor and applies and not needed.specifier.contains(floor, prereleases=True):
                unmet.append(f"{package['name']} needs {needed} (runtime assumed: {floor})")
    return unmet


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def stage(project: Path, vendor_dir: Path, python: Path) -> Path:
    """A copy of the project's code, compiled for the runtime, with the resolved dependencies
    as `vendor/` and no requirements.txt."""
    staged = project / "build" / "lambda-project"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    shutil.copy2(project / "app.py", staged)
    shutil.copytree(project / "chalicelib", staged / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (staged / ".chalice").symlink_to((project / ".chalice").resolve())
    (staged / "vendor").symlink_to(vendor_dir)
    compile_bytecode(python, [staged / "app.py", staged / "chalicelib"])
    return staged


def chalice(args: list[str], project: Path = ROOT, env: dict[str, str] | None = None) -> None:
    """Run `chalice <args>` on the staged project under the runtime's Python."""
    project = project.resolve()
    python = build_python()
    vendor_dir = vendor(project / "requirements.txt", architecture(project))
    base = dict(os.environ if env is None else env)
    for leak in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # nothing of the 3.11 venv reaches chalice
        base.pop(leak, None)
    # Only compile_bytecode's .pyc in the staged code: chalice imports app.py before it zips chalicelib/.
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    with pythons.file_lock(project / "build" / "lambda-project.lock"):
        staged = stage(project, vendor_dir, python)
        command = [str(python.parent / "chalice"), "--project-dir", str(staged), *args]
        subprocess.run(command, cwd=staged, env=base, check=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    env = dict(os.environ)
    if args[:1] == ["package"]:  # chalice wants a region even to write a template; never to deploy
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    chalice(args, env=env)


if __name__ == "__main__":
    main()
