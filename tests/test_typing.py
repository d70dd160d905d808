"""
The public API's type hints: mypy checks the modules that make it up, with
every function annotated (the settings are the ``[mypy]`` sections of
setup.cfg), and the package ships ``py.typed`` so that users' checkers read them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

# events, Reject (router.events), App and TopicHandler, RealmApi, RouterService,
# MemoryRouter/MemoryPeer (router.testing), the interfaces, and the command line
PUBLIC_MODULES = [
    "router/__init__.py",
    "router/events.py",
    "router/errors.py",
    "router/app.py",
    "router/api.py",
    "router/service.py",
    "router/testing.py",
    "router/interfaces.py",
    "router/logs.py",
    "router/version.py",
    "router/cli/__init__.py",
    "router/cli/_run.py",
    "router/cli/_check.py",
    "listeners/log.py",
]


def test_mypy_passes_on_the_public_api():
    """mypy (with mypy-zope) finds no error, and no unannotated function, in the public API's modules."""
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    pytest.importorskip("mypy_zope", reason="mypy-zope is in the test extra: pip install -e '.[test]'")
    # a cache per Python outside the tree keeps a second run to a few seconds
    venv = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"wampd-mypy-cache-{venv}"
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--config-file", "setup.cfg", *PUBLIC_MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found in"), out.stdout


def test_the_wheel_ships_py_typed_the_license_and_the_command(tmp_path):
    """The built wheel has py.typed for both packages, the MIT license and its metadata, and the wampd script."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = tmp_path.glob("wampd-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
        meta = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {"router/py.typed", "listeners/py.typed", f"{info}/licenses/LICENSE"} <= names
    assert "License: MIT" in meta or "License-Expression: MIT" in meta
    for version in ("3.11", "3.12", "3.13"):
        assert f"Classifier: Programming Language :: Python :: {version}" in meta
    assert "wampd = router.cli:console" in entry_points
