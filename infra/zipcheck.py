"""Does a Lambda zip run on the project's runtime? Checks any zip, old or new:

  python -m infra.zipcheck build/package-dev/deployment.zip

1. Every wheel (`*.dist-info/WHEEL`, its `Tag:` lines) fits the runtime: a manylinux glibc no
   newer than Amazon Linux 2023's, the functions' CPU, the runtime's CPython ABI (or abi3/none).
   Nothing was compiled on the build host: no `linux_<cpu>` tag, and every shared object belongs
   to a wheel with a platform tag, is built for that CPU and needs no newer glibc symbol.
2. Pillow imported from the zip (and nothing else: `-I -S`) by an interpreter of the runtime's
   version encodes and decodes JPEG, WebP and PNG, and `PIL.features` reports them; the app's
   thumbnailer from the zip makes PNG and WebP thumbnails (through pyvips and its libvips).
3. What the runtime provides (boto3, botocore, ...) is not in the zip.
4. Nothing used only locally or by the deploy tooling is in the zip: not the `infra` and
   `devtools` packages, whether copied beside app.py or vendored, and no module of the app
   (app.py, chalicelib/) that imports them or reads a setting only the local tools set.

Prints the problems and the sizes; exits 1 if there is a problem.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from infra import lambda_build

#: Legacy manylinux names as PEP 600 glibc versions.
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
#: ELF e_machine values of the CPUs in wheel tags.
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")
GLIBC_SYMBOL = re.compile(rb"GLIBC_2\.(\d+)")
#: Top-level names the runtime-provided distributions install (directories or modules).
PROVIDED_TOP_LEVEL = {
    "boto3": ["boto3/"],
    "botocore": ["botocore/"],
    "s3transfer": ["s3transfer/"],
    "urllib3": ["urllib3/"],
    "python-dateutil": ["dateutil/"],
    "six": ["six.py"],
}
#: Top-level packages of this project that run only locally or in the deploy tooling, never on Lambda.
LOCAL_ONLY_TOP_LEVEL = ("infra/", "devtools/", "chalicelib/infra/", "chalicelib/devtools/")
#: Settings only the local tools set (the runner's counters, before they moved to devtools/runtime):
#: a deployed module that names one carries code that can run only locally.
LOCAL_ONLY_SETTINGS = ("RUNTIME_STATS_URL",)
#: The app's own modules in the zip: chalice puts app.py and chalicelib/ at its top.
APP_MODULE = re.compile(r"(app|chalicelib/.+)\.py")
#: Imported from the zip under the runtime's Python; prints what Pillow can do, as JSON.
PILLOW_PROBE = """
import io, json, os, sys
sys.path.insert(0, os.path.realpath(sys.argv[1]))
out = {"python": "%d.%d" % sys.version_info[:2], "errors": {}}
try:
    import pydantic_core  # the app's other compiled dependency
    out["pydantic_core"] = os.path.realpath(pydantic_core.__file__)
except Exception as exc:
    out["errors"]["pydantic_core"] = f"{type(exc).__name__}: {exc}"
try:
    import PIL
    from PIL import Image, features
    out["pil"] = os.path.realpath(PIL.__file__)
    out["features"] = {name: bool(features.check(name)) for name in ("jpg", "webp", "zlib")}
    for fmt in ("JPEG", "WEBP", "PNG"):
        try:
            buf = io.BytesIO()
            Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, fmt)
            with Image.open(io.BytesIO(buf.getvalue())) as back:
                back.load()
                assert back.format == fmt and back.size == (16, 16)
        except Exception as exc:
            out["errors"]["Pillow " + fmt] = f"{type(exc).__name__}: {exc}"
except Exception as exc:
    out["errors"]["Pillow"] = f"{type(exc).__name__}: {exc}"
try:  # the app's own thumbnailer from the zip: PNG and WebP go through libvips (pyvips-binary)
    import pyvips
    from chalicelib.covers.images import make_thumbnails
    out["pyvips"] = os.path.realpath(pyvips.__file__)
    for fmt in ("PNG", "WEBP"):
        buf = io.BytesIO()
        Image.new("RGBA", (300, 200), (200, 30, 30, 128)).save(buf, fmt)
        names = sorted(t.name for t in make_thumbnails(buf.getvalue()))
        assert names == ["100.jpg", "100.webp", "200.jpg", "200.webp"], names
    out["thumbnails"] = ["PNG", "WEBP"]
except Exception as exc:
    out["errors"]["thumbnails (pyvips)"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def _platform_fits(platform: str, machine: str) -> bool:
    if platform == "any":
        return True
    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(.+)", platform)
    if legacy:
        glibc, cpu = LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)
    else:
        perennial = re.fullmatch(r"manylinux_(\d+)_(\d+)_(.+)", platform)
        if not perennial:
            return False  # linux_<cpu> (built here), musllinux, macosx, win...
        glibc, cpu = (int(perennial.group(1)), int(perennial.group(2))), perennial.group(3)
    return cpu == machine and glibc <= lambda_build.RUNTIME_GLIBC


def _abi_fits(interpreters: str, abi: str) -> bool:
    runtime_minor = lambda_build.RUNTIME_PYTHON[1]
    for interpreter in interpreters.split("."):
        if abi == "none" and (interpreter.startswith("py3") or interpreter == lambda_build.ABI):
            return True
        version = re.fullmatch(r"cp3(\d+)", interpreter)
        if abi == "abi3" and version and int(version.group(1)) <= runtime_minor:
            return True
        if abi == lambda_build.ABI and interpreter == lambda_build.ABI:
            return True
    return False


def wheel_tags(package: zipfile.ZipFile) -> dict[str, list[str]]:
    """Each `.dist-info` directory of the zip with the tags of its WHEEL file."""
    tags = {}
    for name in package.namelist():
        if name.endswith(".dist-info/WHEEL") and name.count("/") == 1:
            text = package.read(name).decode()
            tags[name.split("/")[0]] = [
                line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")
            ]
    return tags


def wheel_problems(package: zipfile.ZipFile, machine: str) -> list[str]:
    """Wheels whose tags do not fit the runtime (check 1)."""
    problems = []
    for dist, tags in sorted(wheel_tags(package).items()):
        fits = []
        for tag in tags:
            interpreter, abi, platforms = tag.split("-")
            if any(p.startswith("linux_") for p in platforms.split(".")):
                problems.append(f"{dist}: tagged {tag}, compiled on the build host, not a manylinux wheel")
            fits.append(_abi_fits(interpreter, abi) and any(_platform_fits(p, machine) for p in platforms.split(".")))
        if not tags:
            problems.append(f"{dist}: WHEEL has no Tag line")
        elif not any(fits):
            problems.append(
                f"{dist}: tags {', '.join(tags)} do not fit {lambda_build.RUNTIME} "
                f"(glibc {'.'.join(map(str, lambda_build.RUNTIME_GLIBC))}, {machine})"
            )
    return problems


def native_problems(package: zipfile.ZipFile, machine: str) -> list[str]:
    """Shared objects that no platform-tagged wheel owns, for another CPU, or needing a newer glibc (check 1)."""
    owned = set()
    for dist, tags in wheel_tags(package).items():
        if any(not tag.endswith("-any") for tag in tags) and f"{dist}/RECORD" in package.namelist():
            owned |= {line.split(",")[0] for line in package.read(f"{dist}/RECORD").decode().splitlines()}
    problems = []
    glibc_major, glibc_minor = lambda_build.RUNTIME_GLIBC
    for info in package.infolist():
        if not SHARED_OBJECT.search(info.filename):
            continue
        data = package.read(info)
        if info.filename not in owned:
            problems.append(f"{info.filename}: a shared object that no platform-tagged wheel's RECORD lists")
        if data[:4] != b"\x7fELF":
            problems.append(f"{info.filename}: not an ELF file")
            continue
        cpu = ELF_MACHINES.get(int.from_bytes(data[18:20], "little"), "unknown")
        if cpu != machine:
            problems.append(f"{info.filename}: built for {cpu}, the functions run on {machine}")
        needed = max((int(m) for m in GLIBC_SYMBOL.findall(data)), default=0)
        if needed > glibc_minor:
            problems.append(f"{info.filename}: needs GLIBC_2.{needed}, the runtime has {glibc_major}.{glibc_minor}")
    return problems


def provided_problems(package: zipfile.ZipFile) -> list[str]:
    """What the runtime provides, shipped anyway (check 3)."""
    names = package.namelist()
    problems = []
    for dist in sorted(lambda_build.RUNTIME_PROVIDED):
        shipped = [p for p in PROVIDED_TOP_LEVEL[dist] if any(n == p or n.startswith(p) for n in names)]
        if shipped:
            size = sum(i.file_size for i in package.infolist() if any(i.filename.startswith(p) for p in shipped))
            problems.append(
                f"{dist}: shipped ({', '.join(shipped)}, {size / 1e6:.1f} MB) though the runtime provides it"
            )
    return problems


def local_only_problems(package: zipfile.ZipFile) -> list[str]:
    """The project's local and deploy-only code, shipped anyway (check 4).

    chalice ships app.py, chalicelib/ and vendor/ (unpacked at the top); either would carry the
    local packages along if they were copied there. Inside the app, local-only code shows as an
    import of those packages or as a setting only the local tools set: the app declares what it
    needs from a local runtime (chalicelib/ops/local_runtime.py) and the tools register it.
    """
    names = package.namelist()
    shipped = {top for top in LOCAL_ONLY_TOP_LEVEL if any(name.startswith(top) for name in names)}
    local = "runs only locally or in deploy tooling"
    problems = [f"{top.rstrip('/')}: shipped, though it {local}" for top in sorted(shipped)]
    for name in sorted(n for n in names if APP_MODULE.fullmatch(n)):
        source = package.read(name).decode("utf-8", errors="replace")
        for imported in local_imports(source):
            problems.append(f"{name}: imports {imported}, which {local}")
        for setting in LOCAL_ONLY_SETTINGS:
            if setting.lower() in source.lower():  # the env var or its Settings field
                problems.append(f"{name}: names {setting}, a setting only the local tools set")
    return problems


def local_imports(source: str) -> list[str]:
    """The modules of the local-only packages that `source` imports, at any depth of its code."""
    local = {top.rstrip("/") for top in LOCAL_ONLY_TOP_LEVEL if top.count("/") == 1}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in local]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in local:
            found.append(str(node.module))
    return sorted(set(found))


def pillow_report(zip_path: Path, python: str) -> dict[str, Any]:
    """Pillow's abilities imported from the zip, unpacked, by `python` alone (check 2)."""
    with tempfile.TemporaryDirectory(prefix="zipcheck-") as root:
        with zipfile.ZipFile(zip_path) as package:
            package.extractall(root)
        probe = subprocess.run([python, "-I", "-S", "-c", PILLOW_PROBE, root], capture_output=True, text=True)
        if probe.returncode != 0:
            return {"errors": {"probe": probe.stderr.strip()[-500:]}}
        report: dict[str, Any] = json.loads(probe.stdout)
        for key in ("pil", "pydantic_core", "pyvips"):  # imported from the zip, not from anywhere else
            where = str(report.get(key, ""))
            if where and not where.startswith(str(Path(root).resolve())):
                report["errors"][key] = f"imported from {where}, not from the zip"
        return report


def pillow_problems(report: dict[str, Any]) -> list[str]:
    """What Pillow from the zip cannot do (check 2)."""
    problems = [f"{what} from the zip: {error}" for what, error in report.get("errors", {}).items()]
    runtime = "{}.{}".format(*lambda_build.RUNTIME_PYTHON)
    if report.get("python") not in (None, runtime):
        problems.append(f"the probe ran Python {report['python']}, not the runtime's {runtime}")
    for feature, present in report.get("features", {}).items():
        if not present:
            problems.append(f"Pillow: PIL.features.check({feature!r}) is False")
    return problems


def check(zip_path: Path, python: str | None = None, architecture: str | None = None) -> list[str]:
    """Every problem of the zip for the project's runtime (empty: it fits)."""
    machine = lambda_build.MACHINES[architecture or lambda_build.architecture()]
    with zipfile.ZipFile(zip_path) as package:
        problems = (
            wheel_problems(package, machine)
            + native_problems(package, machine)
            + provided_problems(package)
            + local_only_problems(package)
        )
    return problems + pillow_problems(pillow_report(zip_path, python or lambda_build.runtime_python()))


def sizes(zip_path: Path) -> tuple[int, int]:
    """The zip's size and its contents' size, in bytes."""
    with zipfile.ZipFile(zip_path) as package:
        return zip_path.stat().st_size, sum(i.file_size for i in package.infolist())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.zipcheck", description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path)
    parser.add_argument("--python", help="an interpreter of the runtime's version (default: found like the build's)")
    args = parser.parse_args(argv)
    zipped, unzipped = sizes(args.zip)
    problems = check(args.zip, args.python)
    print(f"{args.zip}: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped")
    for problem in problems:
        print(f"  FAIL {problem}")
    print(
        f"fits {lambda_build.RUNTIME} {lambda_build.architecture()}" if not problems else f"{len(problems)} problem(s)"
    )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
