"""--low-power, for a Raspberry Pi: a longer hop (fewer model runs) and a slower window redraw.
What it saves is measured by `benchmarks/bench_pipeline.py --low-power` and `bench_gui.py --low-power`."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication

import numpy as np
from PyQt6 import QtCore

from ser_live.gui.window import LOW_POWER_REFRESH_MS, REFRESH_MS, MainWindow
from ser_live.processor import LOW_POWER_HOP_S, ProcessorSettings
from ser_live.session import LiveSession
from tests.conftest import REPO, run_cli

DEMO = REPO / "assets" / "demo" / "ser-live-demo.flac"


def _hops(*options: str) -> np.ndarray:
    proc = run_cli("--headless", "--input", str(DEMO), "--fast", *options)
    assert proc.returncode == 0, proc.stderr
    return np.diff([json.loads(line)["t"] for line in proc.stdout.splitlines()])


def test_low_power_gives_a_result_every_second_unless_a_hop_is_asked_for(model_path: Path) -> None:
    assert np.allclose(_hops("--model", str(model_path), "--low-power"), LOW_POWER_HOP_S)
    assert np.allclose(_hops("--model", str(model_path), "--low-power", "--hop", "0.5"), 0.5)


def test_the_window_redraws_at_the_rate_it_is_given(qtbot, classifier, tmp_path: Path) -> None:  # noqa: ANN001
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    for refresh_ms in (REFRESH_MS, LOW_POWER_REFRESH_MS):
        win = MainWindow(LiveSession(classifier, ProcessorSettings()), settings, refresh_ms=refresh_ms)
        qtbot.addWidget(win)
        assert win.timer.interval() == refresh_ms
        win.close()
