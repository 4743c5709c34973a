"""The zip that ships runs on its runtime (python3.13, Amazon Linux 2023, x86_64): manylinux wheels
only, a Pillow with JPEG, WebP and PNG imported from the zip by Python 3.13, and nothing the
runtime provides (issue 20). The zip before this check held a Pillow compiled on the build host
(`linux_x86_64`, no WebP: every cover resize failed with KeyError 'WEBP') and 21 MB of botocore.

`CHECK_ZIP=path/to/deployment.zip` runs the same checks on another zip (an older build, say).
The first run builds `.venv-build` (chalice on Python 3.13) and the wheels (about a minute);
later runs reuse both and chalice's package cache. Without a Python 3.13 these skip and say so.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import lambda_build, pythons, zipcheck

# One xdist worker takes the whole file (--dist loadgroup):
# its module fixture builds the deployment zip once (about 40 s).
pytestmark = pytest.mark.xdist_group("package_zip")


ROOT = Path(__file__).resolve().parents[2]


def _runtime_python() -> str:
    try:
        return lambda_build.runtime_python()
    except pythons.PythonNotFound as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def shipped_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`chalice package`'s deployment.zip as `make package` builds it, or the zip at $CHECK_ZIP."""
    _runtime_python()
    if given := os.environ.get("CHECK_ZIP"):  # e.g. an older build, to see these tests fail on it
        return Path(given)
    out = tmp_path_factory.mktemp("zip") / "package"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    build = [sys.executable, "-m", "infra.lambda_build", "package", "--stage", "dev", str(out)]
    done = subprocess.run(build, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out / "deployment.zip"


@pytest.fixture(scope="module")
def pillow(shipped_zip: Path) -> dict[str, Any]:
    return zipcheck.pillow_report(shipped_zip, _runtime_python())


def test_every_wheel_fits_the_runtime_and_nothing_was_compiled_here(shipped_zip: Path) -> None:
    machine = lambda_build.MACHINES[lambda_build.architecture()]
    with zipfile.ZipFile(shipped_zip) as package:
        tags = zipcheck.wheel_tags(package)
        assert zipcheck.wheel_problems(package, machine) == []
        assert zipcheck.native_problems(package, machine) == []
        native = [n for n in package.namelist() if zipcheck.SHARED_OBJECT.search(n)]
    (pillow_dist,) = [d for d in tags if d.startswith("pillow-")]
    assert all("manylinux" in tag and tag.startswith("cp313-cp313-") for tag in tags[pillow_dist])
    assert any(n.startswith("PIL/") for n in native) and any(n.startswith("pydantic_core/") for n in native)


def test_pillow_from_the_zip_has_jpeg_webp_and_png_on_the_runtimes_python(pillow: dict[str, Any]) -> None:
    assert pillow["python"] == "3.13"
    assert pillow["errors"] == {}  # JPEG, WEBP and PNG each saved and opened again
    assert pillow["features"] == {"jpg": True, "webp": True, "zlib": True}
    assert zipcheck.pillow_problems(pillow) == []


def test_the_zips_thumbnailer_decodes_png_and_webp_with_libvips_from_the_zip(pillow: dict[str, Any]) -> None:
    """PNG and WebP covers go through pyvips (issue 24): its pure-Python wheel is built from the
    sdist (the only form pyvips 3 ships in) and libvips comes in the pyvips-binary wheel."""
    assert pillow["thumbnails"] == ["PNG", "WEBP"]
    assert "pyvips" in pillow and "thumbnails (pyvips)" not in pillow["errors"]


def test_the_zip_leaves_out_what_the_runtime_provides(shipped_zip: Path) -> None:
    with zipfile.ZipFile(shipped_zip) as package:
        assert zipcheck.provided_problems(package) == []
        names = package.namelist()
    assert not [n for n in names if n.split("/")[0].startswith(("botocore", "boto3", "urllib3", "dateutil"))]
    # What the app itself needs is there.
    assert {"app.py", "chalicelib/__init__.py", "pynamodb/__init__.py", "aws_lambda_powertools/__init__.py"} <= set(
        names
    )


def test_every_module_ships_compiled_for_the_runtime_never_checked_against_its_source(shipped_zip: Path) -> None:
    """/var/task is read-only: a module without its .pyc is compiled again at every cold start
    (`import app` took 815 ms of CPU instead of 351 on 3.13). Hash-based, unchecked (PEP 552):
    the zip keeps mtimes to 2 s only, so a timestamp .pyc would be found stale."""
    tag = "cpython-{}{}".format(*lambda_build.RUNTIME_PYTHON)
    with zipfile.ZipFile(shipped_zip) as package:
        names = set(package.namelist())
        sources = [
            n
            for n in names
            if n.endswith(".py") and n != "app.py" and n.split("/")[0] in ("chalicelib", "pydantic", "pynamodb")
        ]
        compiled = {
            src: src.rpartition("/")[0] + "/__pycache__/" + src.rpartition("/")[2][:-3] + f".{tag}.pyc"
            for src in sources
        }
        missing = sorted(src for src, pyc in compiled.items() if pyc not in names)
        flags = {int.from_bytes(package.read(pyc)[4:8], "little") for pyc in compiled.values() if pyc in names}
    assert sources and missing == []
    assert flags == {0b01}  # hash-based, check_source off


def test_the_command_line_check_passes_on_the_shipped_zip(shipped_zip: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "infra.zipcheck", str(shipped_zip)], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert b"fits python3.13 x86_64" in done.stdout


# The checker itself, on small zips with each defect of the old package (pure logic).


def _elf(machine: int = 62, glibc: int = 17) -> bytes:
    header = b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little")
    return header + bytes(40) + f"GLIBC_2.{glibc}\0GLIBC_2.2.5\0".encode()


def _zip(files: dict[str, bytes]) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def _wheel(dist: str, tags: list[str], native: dict[str, bytes] | None = None) -> dict[str, bytes]:
    native = native or {}
    record = "".join(f"{name},,\n" for name in native) + f"{dist}/WHEEL,,\n"
    wheel = "Wheel-Version: 1.0\n" + "".join(f"Tag: {tag}\n" for tag in tags)
    return {f"{dist}/WHEEL": wheel.encode(), f"{dist}/RECORD": record.encode(), **native}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        (["cp311-cp311-linux_x86_64"], "compiled on the build host"),  # the old zip's Pillow
        (["cp313-cp313-linux_x86_64"], "compiled on the build host"),
        (["cp313-cp313-manylinux_2_35_x86_64"], "do not fit python3.13"),  # newer glibc than AL2023's
        (["cp313-cp313-manylinux_2_28_aarch64"], "do not fit python3.13"),  # another CPU
        (["cp311-cp311-manylinux_2_28_x86_64"], "do not fit python3.13"),  # another Python's ABI
        (["cp313-cp313-musllinux_1_2_x86_64"], "do not fit python3.13"),
        (["cp313-cp313-manylinux_2_27_x86_64", "cp313-cp313-manylinux_2_28_x86_64"], None),
        (["cp313-cp313-manylinux2014_x86_64"], None),
        (["cp38-abi3-manylinux_2_17_x86_64"], None),
        (["py3-none-any"], None),
        (["py2-none-any", "py3-none-any"], None),
    ],
)
def test_the_check_judges_wheel_tags(tags: list[str], problem: str | None) -> None:
    problems = zipcheck.wheel_problems(_zip(_wheel("pkg-1.0.dist-info", tags)), "x86_64")
    assert (problem in " ".join(problems)) if problem else problems == []
    assert bool(problems) == bool(problem)


@pytest.mark.unit
def test_the_check_finds_shared_objects_no_wheel_owns_or_that_do_not_fit() -> None:
    good = _wheel("pillow-13.0.0.dist-info", ["cp313-cp313-manylinux_2_28_x86_64"], {"PIL/_imaging.so": _elf()})
    assert zipcheck.native_problems(_zip(good), "x86_64") == []
    stray = {**good, "mystery/_speedups.cpython-313-x86_64-linux-gnu.so": _elf()}
    assert "no platform-tagged wheel's RECORD" in " ".join(zipcheck.native_problems(_zip(stray), "x86_64"))
    arm = _wheel("pillow-13.0.0.dist-info", ["cp313-cp313-manylinux_2_28_x86_64"], {"PIL/_imaging.so": _elf(183)})
    assert "built for aarch64" in " ".join(zipcheck.native_problems(_zip(arm), "x86_64"))
    new_glibc = _wheel("x-1.dist-info", ["cp313-cp313-manylinux_2_28_x86_64"], {"x/_x.so": _elf(glibc=36)})
    assert "needs GLIBC_2.36" in " ".join(zipcheck.native_problems(_zip(new_glibc), "x86_64"))
    pure = _wheel("y-1.dist-info", ["py3-none-any"], {"y/_y.so": _elf()})  # a pure wheel owns no binaries
    assert "no platform-tagged wheel's RECORD" in " ".join(zipcheck.native_problems(_zip(pure), "x86_64"))


@pytest.mark.unit
def test_the_check_finds_what_the_runtime_provides() -> None:
    shipped = _zip({"botocore/__init__.py": b"x" * 1000, "six.py": b"", "app.py": b""})
    problems = zipcheck.provided_problems(shipped)
    assert [p.split(":")[0] for p in problems] == ["botocore", "six"]
    assert zipcheck.provided_problems(_zip({"app.py": b"", "sixpack/__init__.py": b""})) == []


@pytest.mark.unit
def test_the_zip_holds_no_local_or_deploy_only_package(shipped_zip: Path) -> None:
    with zipfile.ZipFile(shipped_zip) as package:
        assert zipcheck.local_only_problems(package) == []
        assert any(name.startswith("chalicelib/") for name in package.namelist())


def test_the_check_finds_the_infra_and_devtools_packages() -> None:
    shipped = _zip({"app.py": b"", "infra/model.py": b"", "chalicelib/devtools/emulator/server.py": b""})
    problems = zipcheck.local_only_problems(shipped)
    assert [p.split(":")[0] for p in problems] == ["chalicelib/devtools", "infra"]
    assert zipcheck.local_only_problems(_zip({"app.py": b"", "chalicelib/infra_notes.py": b""})) == []


def test_pillow_without_webp_or_on_another_python_is_a_problem() -> None:
    report = {"python": "3.11", "errors": {"Pillow WEBP": "KeyError: 'WEBP'"}, "features": {"jpg": True, "webp": False}}
    problems = zipcheck.pillow_problems(report)
    assert "Pillow WEBP from the zip: KeyError: 'WEBP'" in problems
    assert "Pillow: PIL.features.check('webp') is False" in problems
    assert any("not the runtime's 3.13" in p for p in problems)


@pytest.mark.unit
def test_the_build_refuses_a_package_that_needs_more_than_the_runtime_provides() -> None:
    bundled = [
        {"name": "pynamodb", "requires_dist": ["botocore>=1.12.54", 'typing-extensions>=4; python_version < "3.11"']},
        {"name": "powertools", "requires_dist": ["jmespath<2.0.0,>=1.0.1", 'boto3<2,>=1.40; extra == "aws"']},
        {"name": "botocore", "requires_dist": ["urllib3!=2.2.0,<3,>=1.25.4"]},  # provided: not judged
    ]
    assert lambda_build.needs_beyond_runtime(bundled) == []
    greedy = [{"name": "newlib", "requires_dist": ["botocore>=1.99", "six"]}]
    assert lambda_build.needs_beyond_runtime(greedy) == ["newlib needs botocore>=1.99 (runtime assumed: 1.34.0)"]


@pytest.mark.unit
def test_the_build_takes_exactly_the_runtimes_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Chalice names the runtime after its interpreter: a 3.12 must not stand in for 3.13."""
    for name in ("python3.12", "python3.14"):  # answer yes to any version probe
        (tmp_path / name).write_text("#!/bin/sh\nexit 0\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.delenv("BUILD_PYTHON", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    with pytest.raises(pythons.PythonNotFound, match=r"The Lambda build needs Python 3\.13 .*BUILD_PYTHON"):
        lambda_build.runtime_python()
    (tmp_path / "python3.13").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "python3.13").chmod(0o755)
    assert lambda_build.runtime_python() == str(tmp_path / "python3.13")
