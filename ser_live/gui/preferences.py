"""What the window remembers between runs: geometry, the last folder, the input device and the
controls (smoothing, speech level). Kept in QSettings under the keys below; with ``persist``
off (screenshots, tests) nothing is read or written, so a run never depends on an earlier one."""

from __future__ import annotations

from typing import Any

from PyQt6 import QtCore, QtWidgets

GEOMETRY = "geometry"
LAST_DIR = "last_dir"
DEVICE = "device"
SMOOTHING_S = "smoothing_s"
GATE_DB = "gate_db"


class Preferences:
    def __init__(self, settings: QtCore.QSettings, persist: bool) -> None:
        self.settings = settings
        self.persist = persist

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.value(key, default) if self.persist else default

    def set(self, key: str, value: Any) -> None:
        if self.persist:
            self.settings.setValue(key, value)

    def last_dir(self) -> str:
        return str(self.get(LAST_DIR, ""))

    def restore_geometry(self, window: QtWidgets.QWidget, default_size: QtCore.QSize) -> None:
        """The window where it was last closed, else at ``default_size``."""
        geometry = self.get(GEOMETRY)
        restored = isinstance(geometry, QtCore.QByteArray) and not geometry.isEmpty()
        if not (restored and window.restoreGeometry(geometry)):
            window.resize(default_size)

    def save(self, window: QtWidgets.QWidget) -> None:
        """Remember the geometry and write everything to disk (at close)."""
        if self.persist:
            self.settings.setValue(GEOMETRY, window.saveGeometry())
            self.settings.sync()
