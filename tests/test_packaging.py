"""The wheel carries the shipped model, and an installed ser-live finds it outside the repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, fixture_clips


@pytest.mark.slow
def test_installed_wheel_finds_its_model_and_demo_clip(tmp_path: Path) -> None:
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(REPO)], check=True, timeout=300)
    (wheel,) = wheels.glob("ser_live-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [sys.executable, "-c", "import ser_live.model as m, ser_live.session as s; "
         "print(m.__file__); print(m.default_model_path()); print(s.demo_clip_path())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )
    paths = probe.stdout.split()
    assert len(paths) == 3 and all(p.startswith(str(target)) and Path(p).is_file() for p in paths), paths
    proc = subprocess.run(
        [sys.executable, "-m", "ser_live", "analyze", "--json", str(fixture_clips()[0])],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] is not None
