"""Lay the real window out at a given size, replay the demo clip, save a screenshot and report
where every control ended up: the test of small screens (the Pi's 7" display is 800x480) runs
this under Xvfb, and anyone can run it with another Qt to look at the result:

    DISPLAY=:1 python -m tests.layout_probe 800x480 out.png

It prints one JSON object: the Qt version, the window's size, and per control (each toolbar item,
the menu bar, the status bar, and the buttons of the no-microphone banner, shown after the
screenshot and saved as a second one, out-banner.png) whether it is shown and lies wholly inside
the window; `overflow` is true when the toolbar had to put items behind its "»" extension button.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from PyQt6 import QtCore, QtWidgets

from ser_live.capture import FileSource
from ser_live.gui.app import delete_window
from ser_live.gui.window import MainWindow
from ser_live.model import EmotionClassifier
from ser_live.processor import ProcessorSettings
from ser_live.session import LiveSession, demo_clip_path

REPLAY_TIMEOUT_S = 120.0
SETTLE_ROUNDS = 10


def _placement(window: QtWidgets.QWidget, widget: QtWidgets.QWidget) -> dict[str, object]:
    top_left = widget.mapTo(window, QtCore.QPoint(0, 0))
    rect = QtCore.QRect(top_left, widget.size())
    return {"visible": widget.isVisible(), "inside": window.rect().contains(rect),
            "rect": [rect.x(), rect.y(), rect.width(), rect.height()]}


def _settle(app: QtWidgets.QApplication) -> None:
    """Let layout requests (which may post further ones) and paints run to the end."""
    for _ in range(SETTLE_ROUNDS):
        app.processEvents()
        time.sleep(0.02)


def probe(size: tuple[int, int], screenshot: Path) -> dict[str, object]:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    assert isinstance(app, QtWidgets.QApplication)
    app.setStyle("Fusion")
    settings = QtCore.QSettings(str(screenshot.with_suffix(".ini")), QtCore.QSettings.Format.IniFormat)
    window = MainWindow(LiveSession(EmotionClassifier(), ProcessorSettings()), settings, restore=False)
    window.resize(*size)
    window.show()
    demo = demo_clip_path()
    assert demo is not None
    window.start_source(FileSource(demo, fast=True))
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while window.session.running and time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    window.tick()
    _settle(app)
    toolbar = window.findChild(QtWidgets.QToolBar, "controls")
    assert toolbar is not None
    controls: dict[str, dict[str, object]] = {}
    for action in toolbar.actions():
        widget = toolbar.widgetForAction(action)
        if action.isSeparator() or widget is None:
            continue
        name = action.text() or widget.toolTip() or type(widget).__name__
        if isinstance(widget, QtWidgets.QLabel):
            name = "label " + widget.text().strip()
        controls[name] = _placement(window, widget)
    for name, widget in (("menu bar", window.menuBar()), ("status bar", window.statusBar())):
        assert widget is not None
        controls[name] = _placement(window, widget)
    if window.session.processor.adapter.adapts:  # a session-adapting model: its voice row too
        controls["new speaker"] = _placement(window, window.new_speaker_button)
        controls["voice"] = _placement(window, window.adapt_label)
    extension = toolbar.findChild(QtWidgets.QToolButton, "qt_toolbar_ext_button")
    saved = window.grab().save(str(screenshot), "PNG")
    window.show_no_microphone("no input device found")
    _settle(app)
    for name, widget in (("banner: demo", window.banner_demo), ("banner: open", window.banner_open)):
        controls[name] = _placement(window, widget)
    saved = window.grab().save(str(screenshot.with_name(screenshot.stem + "-banner.png")), "PNG") and saved
    report = {
        "qt": QtCore.qVersion(),
        "size": [window.width(), window.height()],
        "minimum": [window.minimumSizeHint().width(), window.minimumSizeHint().height()],
        "overflow": bool(extension is not None and extension.isVisible()),
        "controls": controls,
        "saved": saved,
        "results": window.session.stats.windows,
    }
    window.close()
    delete_window(window)  # before the app goes, which it does first when probe() returns
    return report


def main() -> int:
    width, height = (int(x) for x in sys.argv[1].split("x"))
    print(json.dumps(probe((width, height), Path(sys.argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
