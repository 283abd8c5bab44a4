"""The built distribution: a wheel made from the files the image's build copies, installed
into a fresh virtualenv, carries the Kibana saved objects and the license.

Building needs setuptools from the package index (pip's build isolation), like any
`pip install` of logpipe; installing the wheel is offline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from collector.kibana import read_saved_objects

ROOT = Path(__file__).resolve().parents[1]
# What the Dockerfile's build stage copies before `pip install .`: all a build needs.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "shipper", "collector", "dashboards")
# Run in the fresh virtualenv, outside any checkout: what the installed finder sees.
PROBE = """
import json
from collector import kibana
objects = kibana.read_saved_objects(kibana.find_dashboards_dir())
names = [f.name for f in objects.files]
print(json.dumps({"module": kibana.__file__, "files": names, "ids": objects.ids}))
"""


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of a copy of the sources, so that the build leaves the checkout untouched."""
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheels"
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)]
    built = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=240)
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("logpipe-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logpipe's wheel, built once for the module."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_installed_wheel_finds_the_same_saved_objects_as_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    """In a fresh virtualenv, the installed collector finds every dashboards/*.ndjson object."""
    env_dir = tmp_path / "venv"
    # The system's site-packages bring the dependencies, so the install needs no index.
    venv.create(env_dir, system_site_packages=True)
    python = env_dir / "bin" / "python"
    # --ignore-installed: a logpipe installed beside the system's packages must not count.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    pip += ["--no-index", "--ignore-installed", str(wheel)]
    installed = subprocess.run(pip, capture_output=True, text=True, check=False, timeout=120)
    assert installed.returncode == 0, installed.stderr
    # -I: neither PYTHONPATH nor the working folder may lend it the checkout's files.
    probe = [str(python), "-I", "-c", PROBE]
    ran = subprocess.run(probe, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    assert Path(found["module"]).is_relative_to(env_dir), found["module"]
    repo = read_saved_objects(ROOT / "dashboards")
    assert found["files"] == [f.name for f in repo.files]
    assert [tuple(i) for i in found["ids"]] == list(repo.ids)


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
