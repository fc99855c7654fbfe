"""The window on small screens: at the Raspberry Pi 7" display's 800x480, at 1280x720 and at the
default size, a real window under Xvfb keeps every control in view and none behind the toolbar's
overflow button. (Checked by hand under Qt 6.7 as well as the pinned Qt: docs/raspberry-pi.md.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.xvfb import running_xvfb


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with running_xvfb() as name:
        yield name


@pytest.mark.slow
@pytest.mark.parametrize("size", [(800, 480), (1280, 720), (1200, 760)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_control_is_in_view(display: str, size: tuple[int, int], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    shot = tmp_path / "window.png"
    proc = subprocess.run([sys.executable, "-m", "tests.layout_probe", f"{size[0]}x{size[1]}", str(shot)],
                          cwd=REPO, env={**env, "DISPLAY": display}, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["size"] == list(size), report  # the window did not insist on being larger
    assert report["saved"] and shot.stat().st_size > 0 and report["results"] > 0
    assert not report["overflow"], "controls went behind the toolbar's overflow button"
    assert len(report["controls"]) >= 16, report["controls"]  # 12 toolbar items, menus, status, banner
    hidden = {name: where for name, where in report["controls"].items() if not (where["visible"] and where["inside"])}
    assert not hidden, hidden
