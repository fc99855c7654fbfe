"""``run_app(args)``: the desktop app as the ``ser-live`` command starts it.

Without a display it exits at once with one line pointing to ``--headless`` (checked before
Qt is touched, because Qt aborts the process when it cannot connect). With ``--screenshot``
it replays ``--input``, saves a grab of the real window, prints a one-line JSON summary on
stdout and exits.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ser_live.errors import EXIT_INTERRUPTED, SerLiveError, handle_stop_signals

APP_NAME = "ser-live"
SCREENSHOT_SIZE = (1200, 760)
SCREENSHOT_GRACE_S = 30.0  # beyond the clip's length: give up waiting and grab anyway
SIGNAL_POLL_MS = 200
NO_DISPLAY = "no display to open a window on (DISPLAY is not set); run without one using --headless"


def display_problem(env: dict[str, str] | None = None) -> str | None:
    """Why no window can open here, or None. Only decides on Linux/BSD, where X11/Wayland apply."""
    env = dict(os.environ if env is None else env)
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if env.get("QT_QPA_PLATFORM"):
        return None  # offscreen, vnc, ...: the user chose a platform
    if env.get("WAYLAND_DISPLAY"):
        return None
    display = env.get("DISPLAY")
    if not display:
        return NO_DISPLAY
    if not _x_display_reachable(display):
        return f"cannot connect to the X display {display}; run without a window using --headless"
    return None


def _x_display_reachable(display: str) -> bool:
    """Try an X connection with libxcb (what Qt's xcb platform uses); unknown counts as reachable."""
    name = ctypes.util.find_library("xcb")
    if name is None:
        return True
    try:
        xcb = ctypes.CDLL(name)
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
        conn = xcb.xcb_connect(display.encode(), None)
        ok = xcb.xcb_connection_has_error(conn) == 0
        xcb.xcb_disconnect(conn)
        return ok
    except (OSError, AttributeError):
        return True


def run_app(args: argparse.Namespace) -> int:
    problem = display_problem()
    if problem:
        raise SerLiveError(problem)
    if args.screenshot is not None and args.input is None:
        raise SerLiveError("--screenshot needs --input FILE (the clip to replay before the screenshot)")

    from ser_live.assembly import load_classifier, open_source, settings_from

    settings = settings_from(args)
    try:
        classifier = load_classifier(args)  # a bad model ends here, in one line, before the main window
    except SerLiveError as exc:
        if args.screenshot is None and not sys.stderr.isatty():
            _show_startup_error(str(exc))
        raise

    from PyQt6 import QtCore, QtWidgets

    from ser_live.gui.window import LOW_POWER_REFRESH_MS, REFRESH_MS, MainWindow
    from ser_live.session import LiveSession

    QtCore.QCoreApplication.setOrganizationName(APP_NAME)
    QtCore.QCoreApplication.setApplicationName(APP_NAME)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    assert isinstance(app, QtWidgets.QApplication)
    app.setStyle("Fusion")
    screenshot = args.screenshot is not None
    refresh_ms = LOW_POWER_REFRESH_MS if args.low_power else REFRESH_MS
    # the waveform moves at every redraw: the front end gathers no more audio than one redraw shows
    session = LiveSession(classifier, dataclasses.replace(settings, front_end_chunk_s=refresh_ms / 1000))
    source = open_source(args, session.processor.cfg.sample_rate_hz) if args.input is not None else None
    window = MainWindow(session, QtCore.QSettings(), device=args.device, restore=not screenshot,
                        command_line={key for key, value in (("smoothing_s", args.smoothing), ("gate_db", args.gate_db))
                                      if value is not None},
                        refresh_ms=refresh_ms)
    if screenshot:
        window.resize(*SCREENSHOT_SIZE)
    window.show()
    if source is not None:
        print(f"ser-live: {source.describe()}, model {classifier.metadata.name}", file=sys.stderr, flush=True)
        window.start_source(source, args.duration)
    else:
        window.start_microphone(args.device, args.device_rate)
    interrupted = _quit_on_signals(app)
    try:
        if screenshot:
            return _screenshot_run(app, window, args.screenshot, args.duration)
        status = app.exec()
        window.close()  # stops capture and saves settings, also when a signal ended the loop
        return EXIT_INTERRUPTED if interrupted else status
    finally:
        delete_window(window)


def delete_window(window: Any) -> None:
    """Destroy a closed window's Qt objects now, while the QApplication and every module are whole.

    Left to Python, a window goes whenever its last reference does: the main window, held in
    reference cycles by signal connections and timers, only during interpreter shutdown, after the
    atexit handlers; the layout probe's when the function that made it and the app returned. Now
    and then either crashed the process (SIGSEGV) after a run that had ended well: twice in CI,
    and the probe 2 runs in 42 on this busy machine, 0 in 110 once it deleted its window first.
    """
    from PyQt6 import sip

    if not sip.isdeleted(window):
        sip.delete(window)


def _show_startup_error(message: str) -> None:
    """Started from a desktop menu, nobody reads stderr: the error that stops the app is also
    shown in a message box. From a terminal the one line on stderr says it all."""
    from PyQt6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, APP_NAME, f"ser-live cannot start:\n\n{message}")
    # a stop signal closes the box too; handled before the box shows, so one sent the moment it
    # appears is not taken for an interrupted run (exit 130 instead of the error's 2)
    _quit_on_signals(app)
    box.show()
    app.exec()  # until the box, the last window, is closed


def _quit_on_signals(app: Any) -> list[int]:
    """Ctrl-C and the stop signals close the window cleanly (capture stopped, a recording
    closed, settings saved).

    Python runs signal handlers only between bytecodes, so a short timer keeps Python
    stepping while Qt's loop idles. Returns a list that holds the signal once one came.
    """
    from PyQt6 import QtCore

    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        app.quit()

    signal.signal(signal.SIGINT, handler)
    handle_stop_signals(handler)
    wake = QtCore.QTimer(app)
    wake.setInterval(SIGNAL_POLL_MS)
    # a signal that came before the loop ran (whose quit() was then a no-op) ends it at the first tick
    wake.timeout.connect(lambda: app.quit() if received else None)
    wake.start()
    return received


def _screenshot_run(app: Any, window: Any, path: Path, duration_s: float | None) -> int:
    """Let the replay run to its end (or the duration), then grab the window and quit."""
    from PyQt6 import QtCore

    started = time.monotonic()
    cpu_started = time.process_time()
    deadline_s = (duration_s or 600.0) + SCREENSHOT_GRACE_S
    outcome: dict[str, Any] = {}

    def finish() -> None:
        if outcome:
            return
        window.tick()  # draw the last results before the grab
        app.processEvents()  # and lay out what they changed (a legend entry turned bold)
        wall_s = time.monotonic() - started
        outcome["cpu_s"] = time.process_time() - cpu_started
        outcome["wall_s"] = wall_s
        outcome["saved"] = window.grab().save(str(path), "PNG")
        app.quit()

    def check() -> None:
        if not window.session.running or time.monotonic() - started > deadline_s:
            # one more timer round so the final results and waveform are painted
            QtCore.QTimer.singleShot(2 * window.timer.interval(), finish)
            poll.stop()

    poll = QtCore.QTimer(window)
    poll.setInterval(100)
    poll.timeout.connect(check)
    poll.start()
    app.exec()
    fps = window.paint_counter.per_second()
    result = window.last_result
    summary = {
        "screenshot": str(path),
        "saved": bool(outcome.get("saved")),
        "label": window.emotion_label.text(),
        "confidence": None if result is None else result.confidence,
        "windows": window.session.stats.windows,
        "speech_windows": window.session.stats.speech_windows,
        "skipped_hops": window.session.stats.skipped_hops,
        "fps_per_second": fps,
        "cpu_s": round(outcome.get("cpu_s", 0.0), 3),
        "wall_s": round(outcome.get("wall_s", 0.0), 3),
        "regions": window.regions(),
    }
    window.close()
    print(json.dumps(summary), flush=True)
    if not summary["saved"]:
        raise SerLiveError(f"could not write the screenshot {path}")
    return 0
