"""Small widgets and helpers the main window is built from: a paint counter (the redraw rate a
person sees), the toolbar's number controls, icons, and the level of the newest audio."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from ser_live.resources import ICON, resource_path

FPS_BUCKETS_KEPT = 600
LEVEL_WINDOW_S = 0.03  # the level meter shows the newest 30 ms


class PaintCounter(QtCore.QObject):
    """Counts paint events of a widget in 1 s buckets: the redraw rate a person sees."""

    def __init__(self, parent: QtCore.QObject) -> None:
        super().__init__(parent)
        self.started = time.monotonic()
        self.buckets: collections.deque[list[int]] = collections.deque(maxlen=FPS_BUCKETS_KEPT)

    def reset(self) -> None:
        self.started = time.monotonic()
        self.buckets.clear()

    def eventFilter(self, obj: QtCore.QObject | None, event: QtCore.QEvent | None) -> bool:  # noqa: N802
        if event is not None and event.type() == QtCore.QEvent.Type.Paint:
            second = int(time.monotonic() - self.started)
            if self.buckets and self.buckets[-1][0] == second:
                self.buckets[-1][1] += 1
            else:
                self.buckets.append([second, 1])
        return False

    def per_second(self) -> list[int]:
        """Frames in each whole second so far (the current, partial second left out)."""
        if not self.buckets:
            return []
        first, last = self.buckets[0][0], int(time.monotonic() - self.started)
        counts = dict((s, n) for s, n in self.buckets)
        return [counts.get(s, 0) for s in range(first, last)]


def level_db(audio: np.ndarray) -> float:
    power = float(np.dot(audio, audio)) / max(1, len(audio))
    return 10.0 * np.log10(power + 1e-12)


def spin_box(
    value_range: tuple[float, float], step: float, decimals: int, suffix: str, tip: str, value: float,
    changed: Callable[[float], None],
) -> QtWidgets.QDoubleSpinBox:
    """A toolbar number control that applies when editing is done, not on every keystroke."""
    spin = QtWidgets.QDoubleSpinBox()
    spin.setRange(*value_range)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    spin.setSuffix(suffix)
    spin.setToolTip(tip)
    spin.setValue(value)
    spin.setKeyboardTracking(False)
    spin.valueChanged.connect(changed)
    return spin


def record_icon() -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(32, 32)
    pixmap.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pixmap)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    painter.setBrush(QtGui.QColor(210, 40, 40))
    painter.setPen(QtCore.Qt.PenStyle.NoPen)
    painter.drawEllipse(6, 6, 20, 20)
    painter.end()
    return QtGui.QIcon(pixmap)


def app_icon() -> QtGui.QIcon | None:
    path = resource_path(ICON)
    return QtGui.QIcon(str(path)) if path is not None else None
