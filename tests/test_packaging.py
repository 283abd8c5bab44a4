"""The built distributions: an sdist made from the files the image's build copies, and a
wheel made from that sdist, carry the Kibana saved objects and the license; installed
into a fresh virtualenv the wheel finds them, and so does an editable install.

Building needs setuptools from the package index (as `build-system.requires` says), like
any `pip install` of logpipe; installing the wheel is offline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

from collector.kibana import read_saved_objects

ROOT = Path(__file__).resolve().parents[1]
# What the Dockerfile's build stage copies before `pip install .`: all a build needs.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "shipper",
    "collector",
    "logpipe",
    "dashboards",
)
# Run in the fresh virtualenv, outside any checkout: what the installed finder sees.
PROBE = """
import json
from collector import kibana
objects = kibana.read_saved_objects(kibana.find_dashboards_dir())
names = [f.name for f in objects.files]
print(json.dumps({"module": kibana.__file__, "files": names, "ids": objects.ids}))
"""


def copy_sources(dest: Path) -> Path:
    """A copy of what a build needs, so that building leaves the checkout untouched."""
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def build_sdist(tmp_path: Path) -> Path:
    """An sdist of a copy of the sources, made by the build backend pyproject.toml names."""
    src = copy_sources(tmp_path / "src")
    with (ROOT / "pyproject.toml").open("rb") as f:
        requires = tomllib.load(f)["build-system"]["requires"]
    backend = tmp_path / "backend"
    venv.create(backend)
    pip = [sys.executable, "-m", "pip", "--python", str(backend / "bin" / "python")]
    got = subprocess.run(
        [*pip, "install", "-q", *requires], capture_output=True, text=True, check=False
    )
    assert got.returncode == 0, got.stderr
    out = tmp_path / "sdist"
    hook = f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"
    built = subprocess.run(
        [str(backend / "bin" / "python"), "-c", hook],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (sdist,) = out.glob("logpipe-*.tar.gz")
    return sdist


def build_wheel(source: Path, out: Path) -> Path:
    """A wheel of `source` (a folder or an sdist), built with pip."""
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)]
    built = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=240)
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("logpipe-*.whl")
    return wheel


def install_into_fresh_venv(env_dir: Path, *what: str) -> Path:
    """A virtualenv over the system's packages (its dependencies), with `what` installed."""
    venv.create(env_dir, system_site_packages=True)
    python = env_dir / "bin" / "python"
    # --ignore-installed: a logpipe installed beside the system's packages must not count.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    pip += ["--ignore-installed", *what]
    installed = subprocess.run(pip, capture_output=True, text=True, check=False, timeout=240)
    assert installed.returncode == 0, installed.stderr
    return python


def probe_saved_objects(python: Path, cwd: Path) -> dict[str, Any]:
    """What collector.kibana finds when run by `python` outside any checkout."""
    # -I: neither PYTHONPATH nor the working folder may lend it the checkout's files.
    ran = subprocess.run(
        [str(python), "-I", "-c", PROBE], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    found: dict[str, Any] = json.loads(ran.stdout)
    return found


def assert_same_objects_as_the_repository(found: dict[str, Any]) -> None:
    """The files and (type, id) pairs found are those of the repository's dashboards/."""
    repo = read_saved_objects(ROOT / "dashboards")
    assert found["files"] == [f.name for f in repo.files]
    assert [tuple(i) for i in found["ids"]] == list(repo.ids)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logpipe's sdist, built once for the module."""
    return build_sdist(tmp_path_factory.mktemp("sdist"))


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logpipe's wheel, built from the sdist as `python -m build` does, once for the module."""
    return build_wheel(sdist, tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_installed_wheel_finds_the_same_saved_objects_as_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    """In a fresh virtualenv, the installed collector finds every dashboards/*.ndjson object."""
    env_dir = tmp_path / "venv"
    python = install_into_fresh_venv(env_dir, "--no-index", str(wheel))
    found = probe_saved_objects(python, tmp_path)
    assert Path(found["module"]).is_relative_to(env_dir), found["module"]
    assert_same_objects_as_the_repository(found)


@pytest.mark.slow
def test_installed_wheel_has_the_three_console_scripts(wheel: Path, tmp_path: Path) -> None:
    """`logpipe`, `logpipe-collector` and `logpipe-shipper` run from a fresh virtualenv."""
    env_dir = tmp_path / "venv"
    install_into_fresh_venv(env_dir, "--no-index", str(wheel))
    for script in ("logpipe", "logpipe-collector", "logpipe-shipper"):
        ran = subprocess.run(
            [str(env_dir / "bin" / script), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.startswith(f"{script} "), ran.stdout
        assert "not installed" not in ran.stdout


@pytest.mark.slow
def test_editable_install_finds_the_source_trees_saved_objects(tmp_path: Path) -> None:
    """`pip install -e` of a source tree finds that tree's dashboards/ from anywhere."""
    src = copy_sources(tmp_path / "src")
    python = install_into_fresh_venv(tmp_path / "venv", "-e", str(src))
    found = probe_saved_objects(python, tmp_path)
    assert Path(found["module"]).is_relative_to(src), found["module"]
    assert_same_objects_as_the_repository(found)


@pytest.mark.slow
def test_wheel_carries_the_license_and_the_dashboards_as_package_data(wheel: Path) -> None:
    """The wheel holds LICENSE in its metadata and each dashboard under collector/dashboards/."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_name) == (ROOT / "LICENSE").read_bytes()
        metadata = archive.read(license_name.replace("licenses/LICENSE", "METADATA")).decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    shipped = {n.removeprefix("collector/dashboards/") for n in names if "/dashboards/" in n}
    assert shipped == {p.name for p in (ROOT / "dashboards").glob("*.ndjson")}


@pytest.mark.slow
def test_wheel_carries_every_module_of_every_package(wheel: Path) -> None:
    """The wheel holds each .py file of shipper/, collector/ and logpipe/, subpackages' too."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.endswith(".py")}
    sources = [
        p for name in ("shipper", "collector", "logpipe") for p in (ROOT / name).rglob("*.py")
    ]
    assert shipped == {p.relative_to(ROOT).as_posix() for p in sources}


@pytest.mark.slow
def test_sdist_carries_the_license_and_the_dashboards(sdist: Path) -> None:
    """The sdist holds LICENSE and every dashboards/*.ndjson at its top level."""
    with tarfile.open(sdist) as archive:
        names = {n.partition("/")[2] for n in archive.getnames()}
    assert "LICENSE" in names
    shipped = {n.removeprefix("dashboards/") for n in names if n.startswith("dashboards/")}
    assert shipped - {""} == {p.name for p in (ROOT / "dashboards").glob("*.ndjson")}
