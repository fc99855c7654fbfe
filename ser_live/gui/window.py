"""The main window: live waveform and level, the current emotion, rolling probabilities,
controls, menus, shortcuts and remembered settings.

Only the GUI thread runs this code. Results and audio reach it through :class:`LiveSession`
(a deque the worker appends to, and a copy of the newest audio), polled on a 30 ms timer.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

from ser_live.audio_io import AUDIO_EXTENSIONS
from ser_live.capture import FileSource, MicrophoneSource
from ser_live.engine import WAVEFORM_SECONDS, AudioSource
from ser_live.errors import DeviceError, SerLiveError, one_line
from ser_live.gui import preferences
from ser_live.gui.about import about_box
from ser_live.gui.plots import (
    LEVEL_FLOOR_DB,
    EmotionLegend,
    LevelMeter,
    ProbabilityPlot,
    WaveformPlot,
    configure_pyqtgraph,
)
from ser_live.gui.preferences import Preferences
from ser_live.gui.widgets import LEVEL_WINDOW_S, PaintCounter, app_icon, level_db, record_icon, spin_box
from ser_live.processor import WindowResult
from ser_live.session import LiveSession, demo_clip_path

REFRESH_MS = 30
LOW_POWER_REFRESH_MS = 100  # --low-power: 10 redraws a second, still smooth enough for a level meter
STATUS_EVERY_TICKS = 8  # status bar text about 4 times a second
SMOOTHING_MAX_S = 10.0
SMOOTHING_STEP_S = 0.25
GATE_RANGE_DB = (LEVEL_FLOOR_DB, -20.0)  # the level meter shows the whole range
IDLE_TEXT = "\u2014"  # the emotion label before any result
AUDIO_FILTER = f"Audio files ({' '.join('*' + ext for ext in AUDIO_EXTENSIONS)});;All files (*)"
RECONNECT_MS = 2000  # a lost device is tried again this often (each try rescans: ~50 ms of the GUI thread)
DEFAULT_SIZE = QtCore.QSize(1200, 760)
# On a narrow screen (the Raspberry Pi's 7" display is 800x480) the toolbar first drops its buttons'
# texts (tooltips and menus keep them), then narrows the device list: every control stays in view,
# none goes behind the toolbar's "»" overflow button. Steps: (button style, device list characters).
TOOLBAR_STEPS = (
    (QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon, 24),
    (QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly, 24),
    (QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly, 12),
)
PEAK_HOLD_FOREVER = 1e9  # elapsed time that releases the level meter's peak hold at once


class MainWindow(QtWidgets.QMainWindow):
    """The app's window. Every slot connected here is a bound method, never a lambda or closure
    over ``self``: PyQt holds a bound method's instance weakly but a closure strongly, so a
    closure over ``self`` puts the window in a reference cycle. Its C++ side then dies whenever
    the cyclic GC next runs, which can be inside a Python callback (an event filter, a
    pyqtgraph paint) that Qt is making into one of the window's own widgets: a segfault once
    that callback returns. Without a cycle the window goes when its last reference does."""

    sigSessionEnded = QtCore.pyqtSignal()  # capture stopped: end of file, duration, error or Stop

    def __init__(
        self,
        session: LiveSession,
        settings: QtCore.QSettings,
        *,
        device: str | None = None,
        restore: bool = True,
        command_line: Collection[str] = (),
        refresh_ms: int = REFRESH_MS,
    ) -> None:
        """``restore``: remember geometry and choices between runs; controls named in
        ``command_line`` (``smoothing_s``, ``gate_db``) were set there and win over remembered ones;
        ``refresh_ms``: how often the plots redraw (longer with --low-power)."""
        super().__init__()
        configure_pyqtgraph()
        self.session = session
        self.prefs = Preferences(settings, persist=restore)
        self.setWindowTitle("ser-live")
        icon = app_icon()
        if icon is not None:
            self.setWindowIcon(icon)
        self.labels = session.labels
        cfg = session.processor.cfg
        self._last_file: Path | None = None
        self._was_running = False
        self._ticks = 0
        self._last_tick = time.monotonic()
        self._messages: list[QtWidgets.QMessageBox] = []
        self.last_result: WindowResult | None = None
        for key, apply in self._remembered_controls().items():
            saved = self.prefs.get(key)
            if saved is not None and key not in command_line:
                apply(float(saved))
        self._build_ui(cfg.sample_rate_hz, cfg.hop_s)
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._populate_devices(device)
        self.prefs.restore_geometry(self, DEFAULT_SIZE)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.reconnect_timer = QtCore.QTimer(self)
        self.reconnect_timer.setInterval(RECONNECT_MS)
        self.reconnect_timer.timeout.connect(self._reconnect)
        self.show_idle()
        self._update_status()

    @staticmethod
    def default_size() -> QtCore.QSize:
        return QtCore.QSize(DEFAULT_SIZE)

    # -- layout --------------------------------------------------------------------------
    def _build_ui(self, sample_rate_hz: int, hop_s: float) -> None:
        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(10, 6, 10, 4)
        outer.setSpacing(6)

        self.banner = QtWidgets.QFrame()
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet(
            "#banner { background: #fff4d6; border: 1px solid #e0b84a; border-radius: 4px; }"
        )
        banner_layout = QtWidgets.QHBoxLayout(self.banner)
        banner_layout.setContentsMargins(10, 6, 10, 6)
        self.banner_text = QtWidgets.QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_demo = QtWidgets.QPushButton("Play demo clip")
        self.banner_open = QtWidgets.QPushButton("Open audio file\u2026")
        banner_layout.addWidget(self.banner_text, 1)
        banner_layout.addWidget(self.banner_demo)
        banner_layout.addWidget(self.banner_open)
        self.banner.hide()
        outer.addWidget(self.banner)

        top = QtWidgets.QHBoxLayout()
        top.setSpacing(12)
        emotion_box = QtWidgets.QFrame()
        emotion_box.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        emotion_box.setMinimumWidth(280)
        emotion_box.setMaximumWidth(340)
        emotion_layout = QtWidgets.QVBoxLayout(emotion_box)
        caption = QtWidgets.QLabel("current emotion")
        caption.setStyleSheet("color: #666;")
        self.emotion_label = QtWidgets.QLabel(IDLE_TEXT)
        font = self.emotion_label.font()
        font.setPointSize(30)
        font.setBold(True)
        self.emotion_label.setFont(font)
        self.emotion_label.setMinimumHeight(56)
        self.confidence_label = QtWidgets.QLabel()
        conf_font = self.confidence_label.font()
        conf_font.setPointSize(14)
        self.confidence_label.setFont(conf_font)
        self.speech_indicator = QtWidgets.QLabel()
        self.speech_indicator.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.speech_indicator.setFixedHeight(26)
        self.speech_indicator.setMinimumWidth(110)
        emotion_layout.addWidget(caption)
        emotion_layout.addWidget(self.emotion_label)
        emotion_layout.addWidget(self.confidence_label)
        emotion_layout.addSpacing(8)
        emotion_layout.addWidget(self.speech_indicator, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        voice_row = QtWidgets.QHBoxLayout()
        self.adapt_label = QtWidgets.QLabel()
        self.adapt_label.setStyleSheet("color: #666;")
        self.adapt_label.setToolTip("the model adapts to the voice it hears: its first seconds of speech "
                                    "are judged against an average voice")
        self.new_speaker_button = QtWidgets.QPushButton("New speaker")
        self.new_speaker_button.setToolTip("forget the voice learned so far: someone else speaks now (Ctrl+N)")
        self.new_speaker_button.clicked.connect(self.new_speaker)
        voice_row.addWidget(self.adapt_label, 1)
        voice_row.addWidget(self.new_speaker_button)
        emotion_layout.addLayout(voice_row)
        adapts = self.session.processor.adapter.adapts
        self.adapt_label.setVisible(adapts)
        self.new_speaker_button.setVisible(adapts)
        self._show_adaptation(0.0)
        emotion_layout.addStretch(1)
        self.stream_label = QtWidgets.QLabel()
        self.stream_label.setStyleSheet("color: #666;")
        emotion_layout.addWidget(self.stream_label)
        top.addWidget(emotion_box)

        wave_box = QtWidgets.QVBoxLayout()
        wave_box.setSpacing(2)
        wave_caption = QtWidgets.QLabel(f"waveform, last {WAVEFORM_SECONDS:g} s, and input level")
        wave_caption.setStyleSheet("color: #666;")
        self.waveform = WaveformPlot(WAVEFORM_SECONDS, sample_rate_hz, self.session.settings.gate.frame_threshold)
        self.waveform.setMinimumHeight(150)
        self.level_meter = LevelMeter()
        self.level_meter.set_gate(self.session.settings.gate.min_level_db)
        wave_box.addWidget(wave_caption)
        wave_box.addWidget(self.waveform, 1)
        wave_box.addWidget(self.level_meter)
        top.addLayout(wave_box, 1)
        outer.addLayout(top, 2)

        self.prob_panel = QtWidgets.QWidget()
        prob_layout = QtWidgets.QVBoxLayout(self.prob_panel)
        prob_layout.setContentsMargins(0, 0, 0, 0)
        prob_layout.setSpacing(2)
        self.probabilities = ProbabilityPlot(self.labels, hop_s, self.session.settings.gate.frame_threshold)
        prob_caption = QtWidgets.QLabel(
            f"emotion probabilities of each {self.session.processor.cfg.window_s:g} s window, at its end, last "
            f"{self.probabilities.history_s:g} s (grey: no speech heard; green on the waveform: speech)"
        )
        prob_caption.setStyleSheet("color: #666;")
        self.legend = EmotionLegend(self.probabilities.colours)
        prob_layout.addWidget(prob_caption)
        prob_layout.addWidget(self.probabilities, 1)
        prob_layout.addWidget(self.legend)
        outer.addWidget(self.prob_panel, 3)
        self.setCentralWidget(central)

        self.paint_counter = PaintCounter(self)
        self.waveform.viewport().installEventFilter(self.paint_counter)

        bar = self._status_bar()
        bar.setStyleSheet("QStatusBar::item { border: none; } QStatusBar QLabel { padding: 0 8px; "
                          "border-left: 1px solid #c8c8c8; }")
        self.status_source = QtWidgets.QLabel()
        self.status_model = QtWidgets.QLabel()
        self.status_drops = QtWidgets.QLabel()
        self.status_latency = QtWidgets.QLabel()
        for widget in (self.status_source, self.status_model, self.status_drops, self.status_latency):
            bar.addPermanentWidget(widget)
        # On a narrow screen the source (a long file name) gives way, so the drop counts stay whole;
        # its tooltip keeps the full text.
        self.status_source.setMinimumWidth(1)

    def _build_actions(self) -> None:
        """The window's commands, each with a shortcut; the toolbar and menus show them."""
        pixmap = QtWidgets.QStyle.StandardPixmap
        self.start_action = self._action("Start", "Space", self.toggle_capture, "start or stop capture",
                                         pixmap.SP_MediaPlay)
        self.open_action = self._action("Open file\u2026", "Ctrl+O", self.open_file_dialog,
                                        "replay an audio file through the live pipeline", pixmap.SP_DialogOpenButton)
        self.demo_action = self._action("Demo clip", "Ctrl+D", self.play_demo, "replay the bundled demo clip",
                                        pixmap.SP_MediaSeekForward)
        self.demo_action.setEnabled(demo_clip_path() is not None)
        self.record_action = self._action("Record", "Ctrl+R", self.toggle_recording,
                                          "record the session: audio (WAV) and probabilities (CSV)")
        self.record_action.setIcon(record_icon())
        self.record_action.setCheckable(True)
        self.export_action = self._action("Export PNG\u2026", "Ctrl+E", self.export_plot_dialog,
                                          "save the probability plot as a PNG image",
                                          pixmap.SP_DialogSaveButton)
        self.about_action = self._action("About", "F1", self.show_about, "model card and licences",
                                         pixmap.SP_MessageBoxInformation)
        self.rescan_action = self._action("Rescan devices", "F5", self.rescan_devices,
                                          "look for input devices again")
        self.quit_action = self._action("Quit", "Ctrl+Q", self.close, "quit ser-live")
        self.new_speaker_action = self._action("New speaker", "Ctrl+N", self.new_speaker,
                                               "forget the voice learned so far: someone else speaks now")
        self.banner_demo.clicked.connect(self.play_demo)
        self.banner_demo.setEnabled(demo_clip_path() is not None)
        self.banner_open.clicked.connect(self.open_file_dialog)

    def _build_toolbar(self) -> None:
        """The toolbar: capture, input, smoothing and speech level, record/export/about. The one
        place that lays it out (the controls it holds are made here, the actions above)."""
        tb = QtWidgets.QToolBar("Controls", self)
        self.toolbar = tb
        self.addToolBar(tb)
        tb.setObjectName("controls")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.start_action)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Input "))
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setMinimumContentsLength(24)
        self.device_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setToolTip("input device: choosing one restarts capture")
        self.device_combo.activated.connect(self._device_chosen)
        tb.addWidget(self.device_combo)
        tb.addAction(self.open_action)
        tb.addAction(self.demo_action)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Smoothing "))
        self.smoothing_spin = spin_box((0.0, SMOOTHING_MAX_S), SMOOTHING_STEP_S, 2, " s",
                                        "time constant of probability smoothing (0: none)",
                                        self.session.settings.smoothing_s, self.set_smoothing)
        tb.addWidget(self.smoothing_spin)
        tb.addWidget(QtWidgets.QLabel(" Speech above "))
        self.gate_spin = spin_box(GATE_RANGE_DB, 1.0, 0, " dBFS",
                                   "speech must peak above this level (the mark on the level meter); "
                                   "lower it for a quiet microphone",
                                   self.session.settings.gate.min_level_db, self.set_gate_level)
        tb.addWidget(self.gate_spin)
        tb.addSeparator()
        tb.addAction(self.record_action)
        tb.addAction(self.export_action)
        tb.addAction(self.about_action)

    def _fit_toolbar(self, width: int) -> None:
        """Take the first of TOOLBAR_STEPS whose toolbar fits ``width`` (the last if none does)."""
        layout = self.toolbar.layout()
        assert layout is not None
        for style, combo_chars in TOOLBAR_STEPS:
            if self.toolbar.toolButtonStyle() != style:
                self.toolbar.setToolButtonStyle(style)
            if self.device_combo.minimumContentsLength() != combo_chars:
                self.device_combo.setMinimumContentsLength(combo_chars)
                # QComboBox keeps its old minimum size hint: say the new minimum outright
                self.device_combo.setMinimumWidth(self.device_combo.sizeHint().width())
            # summed here: QToolBar's own size hint lags behind a change of the combo box
            widgets = [w for w in map(self.toolbar.widgetForAction, self.toolbar.actions()) if w is not None]
            margins = layout.contentsMargins()
            needed = (sum(w.sizeHint().width() for w in widgets) + layout.spacing() * (len(widgets) - 1)
                      + margins.left() + margins.right())
            if needed <= width:
                return

    def resizeEvent(self, event: QtGui.QResizeEvent | None) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_toolbar(self.width())

    def _build_menus(self) -> None:
        menus = self.menuBar()
        assert menus is not None
        file_menu = menus.addMenu("&File")
        capture_menu = menus.addMenu("&Capture")
        help_menu = menus.addMenu("&Help")
        assert file_menu is not None and capture_menu is not None and help_menu is not None
        for action in (self.open_action, self.demo_action, None, self.record_action, self.export_action,
                       None, self.quit_action):
            if action is None:
                file_menu.addSeparator()
            else:
                file_menu.addAction(action)
        capture_menu.addAction(self.start_action)
        capture_menu.addAction(self.rescan_action)
        capture_menu.addAction(self.new_speaker_action)
        help_menu.addAction(self.about_action)

    def _status_bar(self) -> QtWidgets.QStatusBar:
        bar = self.statusBar()
        assert bar is not None  # a QMainWindow always makes one on request
        return bar

    def _action(
        self, text: str, shortcut: str, slot: Any, tip: str, icon: QtWidgets.QStyle.StandardPixmap | None = None
    ) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        style = self.style()
        if icon is not None and style is not None:
            action.setIcon(style.standardIcon(icon))
        action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{tip} ({shortcut})")
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # -- devices and sources ---------------------------------------------------------------
    def _populate_devices(self, preferred: str | None) -> None:
        """Fill the device picker; ``preferred`` (a name or index) or the remembered device is selected."""
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        try:
            devices = self.session.devices()
            self.device_error: str | None = None if devices else "no audio input device found"
        except DeviceError as exc:
            devices, self.device_error = [], str(exc)
        if devices:
            self.device_combo.addItem("System default", None)
        for d in devices:
            self.device_combo.addItem(f"{d['name']} ({d['hostapi']})", d["index"])
        if not devices:
            self.device_combo.addItem("No input device", None)
        self.device_combo.setEnabled(bool(devices))
        wanted = preferred or self.prefs.get(preferences.DEVICE)
        if wanted:
            for i in range(self.device_combo.count()):
                data, text = self.device_combo.itemData(i), self.device_combo.itemText(i)
                if str(data) == str(wanted) or str(wanted).lower() in text.lower():
                    self.device_combo.setCurrentIndex(i)
                    break
        self.device_combo.blockSignals(False)

    def rescan_devices(self) -> None:
        """Refill the picker, keeping the current choice. PortAudio only rescans with no stream
        open, so a running microphone is stopped for it and restarted."""
        was_capturing = self.session.running and isinstance(self.session.source, MicrophoneSource)
        if was_capturing:
            self.stop_capture()
        self._populate_devices(self.device_combo.currentText() or None)
        if was_capturing:
            self.start_microphone()

    def _device_chosen(self, index: int) -> None:
        self.start_microphone()

    def _selected_device(self) -> int | None:
        data = self.device_combo.currentData()
        return int(data) if data is not None else None

    def start_microphone(self, device: str | int | None = None, device_rate_hz: int | None = None) -> bool:
        """Capture from ``device`` (an index or part of a name, as ``--device`` takes) or the
        picked one, at ``device_rate_hz`` if given (``--device-rate``); with none usable, say
        so and offer the demo clip."""
        self._last_file = None
        self.stop_capture()
        try:
            spec = device if device is not None else self._selected_device()
            source = self.session.start_microphone(spec, device_rate_hz)
        except SerLiveError as exc:
            self.device_error = str(exc)
            self.show_no_microphone(self.device_error)
            return False
        self.device_error = None
        self.prefs.set(preferences.DEVICE, self.device_combo.currentText())
        self._started(source)
        return True

    def start_source(self, source: AudioSource, duration_s: float | None = None) -> bool:
        """Capture from a source opened elsewhere (the command line's --input)."""
        self.stop_capture()
        try:
            self.session.start(source, duration_s)
        except SerLiveError as exc:
            self.show_error("Cannot start", str(exc))
            return False
        self._started(source)
        return True

    def _started(self, source: AudioSource) -> None:
        self.reconnect_timer.stop()
        self._last_file = getattr(source, "path", None)
        self.banner.hide()
        self.probabilities.clear_history()
        self.waveform.clear_history()
        self.legend.set_probs(None)
        self.show_idle("listening\u2026")
        self.paint_counter.reset()
        self._was_running = True
        self._set_start_action(running=True)
        self._status_bar().showMessage(f"started: {source.describe()}", 4000)
        self._update_status()

    def _set_start_action(self, running: bool) -> None:
        style = self.style()
        self.start_action.setText("Stop" if running else "Start")
        if style is not None:
            pixmap = QtWidgets.QStyle.StandardPixmap
            self.start_action.setIcon(style.standardIcon(pixmap.SP_MediaStop if running else pixmap.SP_MediaPlay))

    def play_file(self, path: Path | str, duration_s: float | None = None, fast: bool = False) -> bool:
        """Replay a file through the live pipeline; an unreadable file is reported, nothing else changes."""
        path = Path(path)
        self.stop_capture()
        try:
            source = self.session.play_file(path, fast, duration_s)
        except SerLiveError as exc:
            self.show_error("Cannot open audio file", str(exc))
            return False
        self.prefs.set(preferences.LAST_DIR, str(path.parent))
        self._started(source)
        return True

    def play_demo(self) -> bool:
        demo = demo_clip_path()
        if demo is None:
            self.show_error("No demo clip", "the bundled demo clip (assets/demo) is not installed")
            return False
        return self.play_file(demo)

    def open_file_dialog(self) -> None:
        start_dir = self.prefs.last_dir()
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Replay an audio file", start_dir, AUDIO_FILTER)
        if path:
            self.play_file(path)

    def toggle_capture(self) -> None:
        if self.session.running:
            self.stop_capture()
        elif self._last_file is not None:  # the last source was a file: replay it again
            self.play_file(self._last_file)
        else:
            self.start_microphone()

    def stop_capture(self) -> None:
        self.reconnect_timer.stop()
        self.stop_recording()
        self.session.stop()
        self.tick()

    # -- recording and export ------------------------------------------------------------
    def toggle_recording(self) -> None:
        if self.session.recorder.active:
            self.stop_recording()
            return
        path = self._ask_save_path("Record session (a CSV is written beside the WAV)",
                                   "ser-live-session-%Y%m%d-%H%M%S.wav", "WAV (*.wav)")
        if path:
            self.start_recording(Path(path))
        else:
            self.record_action.setChecked(False)

    def start_recording(self, wav_path: Path) -> bool:
        if wav_path.suffix.lower() != ".wav":
            wav_path = wav_path.with_suffix(".wav")
        try:
            self.session.start_recording(wav_path)
        except SerLiveError as exc:
            self.record_action.setChecked(False)
            self.show_error("Cannot record", str(exc))
            return False
        self.record_action.setChecked(True)
        self.record_action.setText("Stop recording")
        self._status_bar().showMessage(f"recording to {wav_path} and {wav_path.with_suffix('.csv').name}")
        return True

    def stop_recording(self) -> None:
        done = self.session.recorder.stop()
        self.record_action.setChecked(False)
        self.record_action.setText("Record")
        if done:
            wav, csv_path, seconds = done
            self._status_bar().showMessage(f"recorded {seconds:.1f} s: {wav} and {csv_path.name}", 10000)

    def export_plot_dialog(self) -> None:
        path = self._ask_save_path("Export the probability plot", "ser-live-plot-%Y%m%d-%H%M%S.png",
                                   "PNG image (*.png)")
        if path:
            self.export_plot(Path(path))

    def _ask_save_path(self, title: str, name_pattern: str, file_filter: str) -> str:
        """A save dialog in the last folder used, offering a time-stamped name; '' if cancelled."""
        start_dir = self.prefs.last_dir()
        name = time.strftime(name_pattern)
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, title, str(Path(start_dir) / name), file_filter)
        return path

    def export_plot(self, path: Path) -> bool:
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        if not self.prob_panel.grab().save(str(path), "PNG"):
            self.show_error("Cannot export", f"could not write {path}")
            return False
        self._status_bar().showMessage(f"plot saved to {path}", 6000)
        return True

    def show_about(self) -> None:
        self._show_box(about_box(self, self.session))

    # -- messages ------------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        """A message box that does not block the event loop (the plots keep running), and the status bar."""
        self._status_bar().showMessage(f"{title}: {message}", 15000)
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        self._show_box(box)

    def _show_box(self, box: QtWidgets.QMessageBox) -> None:
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._box_finished)
        self._messages.append(box)
        box.open()

    def _box_finished(self) -> None:
        box = self.sender()
        if isinstance(box, QtWidgets.QMessageBox) and box in self._messages:
            self._messages.remove(box)

    @property
    def open_messages(self) -> list[QtWidgets.QMessageBox]:
        return list(self._messages)

    def show_no_microphone(self, reason: str) -> None:
        offer = "Replay the bundled demo clip or open an audio file." if demo_clip_path() else "Open an audio file."
        self.banner_text.setText(f"<b>No microphone:</b> {html.escape(reason)}.<br>{offer}")
        self.banner.show()
        self._status_bar().showMessage(f"no microphone: {reason}", 15000)
        self._update_status()

    # -- live updates (GUI timer) ----------------------------------------------------------
    def show_idle(self, hint: str = "idle") -> None:
        self.last_result = None
        self.emotion_label.setText(IDLE_TEXT)
        self.emotion_label.setStyleSheet("color: #999;")
        self.confidence_label.setText(hint)
        self.stream_label.setText("")
        self._set_indicator(None)

    def _set_indicator(self, speech: bool | None) -> None:
        if speech is None:
            text, style = "no input", "background: #e6e6e6; color: #777;"
        elif speech:
            text, style = "\u25cf speech", "background: #2e9e48; color: white;"
        else:
            text, style = "\u25cb silence", "background: #d9d9d9; color: #444;"
        self.speech_indicator.setText(text)
        self.speech_indicator.setStyleSheet(style + " border-radius: 12px; padding: 0 12px; font-weight: bold;")

    def new_speaker(self) -> None:
        """Someone else speaks now: the model forgets the voice it adapted to."""
        self.session.new_speaker()
        self._show_adaptation(0.0)

    def _show_adaptation(self, heard_s: float) -> None:
        warm_s = self.session.processor.adapter.warm_s
        if heard_s < warm_s:
            self.adapt_label.setText(f"voice: learning ({heard_s:.1f} of {warm_s:g} s)")
        else:
            self.adapt_label.setText(f"voice: adapted ({heard_s:.0f} s of speech)")

    def show_results(self, results: list[WindowResult]) -> None:
        """The update path for new results: plot, legend, current emotion."""
        if not results:
            return
        self.probabilities.add_results(results)
        self.waveform.add_results(results)
        latest = results[-1]
        self.last_result = latest
        self.legend.set_probs(latest.probs)
        self._set_indicator(latest.speech)
        if latest.adapted_s is not None:
            self._show_adaptation(latest.adapted_s)
        level = f"{latest.level_db:.0f} dBFS" if latest.level_db > LEVEL_FLOOR_DB else "silent"
        self.stream_label.setText(f"at {latest.t:.1f} s of input \u00b7 level {level}")
        if latest.label is None:
            self.emotion_label.setText("silence")
            self.emotion_label.setStyleSheet("color: #999;")
            self.confidence_label.setText("no speech in the last window")
        else:
            r, g, b = self.probabilities.colours[latest.label]
            if latest.uncertain:
                self.emotion_label.setText("uncertain")
                self.emotion_label.setStyleSheet(f"color: rgba({r},{g},{b},150);")
                self.confidence_label.setText(f"maybe {latest.label} ({latest.confidence:.0%})")
            else:
                self.emotion_label.setText(latest.label)
                self.emotion_label.setStyleSheet(f"color: rgb({r},{g},{b});")
                self.confidence_label.setText(f"confidence {latest.confidence:.0%}")

    def tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        self._ticks += 1
        running = self.session.running
        self.show_results(self.session.drain())
        if running or self._was_running:
            new = self.session.audio_since(self.waveform.position)
            level = self.session.recent_audio(LEVEL_WINDOW_S)
            if new is not None and level is not None:
                processor = self.session.processor
                self.waveform.show_audio(*new, processor.samples_heard / processor.cfg.sample_rate_hz)
                self.level_meter.set_level(level_db(level), elapsed)
        if self._was_running and not running:
            self._was_running = False
            self._session_ended()
        if self._ticks % STATUS_EVERY_TICKS == 0:
            self._update_status()

    def _session_ended(self) -> None:
        self.stop_recording()
        self._set_start_action(running=False)
        self.level_meter.set_level(LEVEL_FLOOR_DB, PEAK_HOLD_FOREVER)
        error = self.session.error
        if isinstance(error, DeviceError) and isinstance(self.session.source, MicrophoneSource):
            # Said once, in one line; then the device is tried again until it is back.
            print(f"ser-live: input lost: {error}; trying it again every {RECONNECT_MS / 1000:g} s",
                  file=sys.stderr, flush=True)
            self.show_no_microphone(str(error))
            self.reconnect_timer.start()
        elif error is not None:
            self.show_error("Capture stopped", one_line(error))
        elif isinstance(self.session.source, FileSource):
            self._status_bar().showMessage(f"replay of {self.session.source.name} finished", 10000)
        self._update_status()
        self.sigSessionEnded.emit()

    def _reconnect(self) -> None:
        """A lost device is tried again on a timer; once it is back, capture goes on from it."""
        source = self.session.reconnect()
        if source is not None:
            print(f"ser-live: capturing again: {source.describe()}", file=sys.stderr, flush=True)
            self._started(source)

    def _update_status(self) -> None:
        source = self.session.source
        if source is None:
            where = "no input" if not self.device_error else "no microphone"
            self.status_source.setText(where)
        else:
            state = "" if self.session.running else " (stopped)"
            self.status_source.setText(f"{source.describe()}{state}")
        self.status_source.setToolTip(self.status_source.text())
        meta = self.session.classifier.metadata
        self.status_model.setText(f"model {meta.name}")
        stats = self.session.stats
        self.status_drops.setText(
            f"lost {stats.lost_samples} samples, overflows {stats.overflows}, skipped hops {stats.skipped_hops}"
        )
        latency = self.last_result.latency_ms if self.last_result is not None else stats.mean_latency_ms
        self.status_latency.setText(f"latency {latency:.0f} ms")

    def _remembered_controls(self) -> dict[str, Callable[[float], None]]:
        """Controls kept between runs: settings key -> how the session applies a value."""
        return {preferences.SMOOTHING_S: self.session.set_smoothing, preferences.GATE_DB: self.session.set_gate_level}

    def _control_changed(self, key: str, value: float) -> None:
        self._remembered_controls()[key](float(value))
        self.prefs.set(key, float(value))

    def set_smoothing(self, value: float) -> None:
        self._control_changed(preferences.SMOOTHING_S, value)

    def set_gate_level(self, value: float) -> None:
        self._control_changed(preferences.GATE_DB, value)
        self.level_meter.set_gate(float(value))

    # -- lifetime ------------------------------------------------------------------------
    def closeEvent(self, event: QtGui.QCloseEvent | None) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        self.stop_recording()
        self.session.stop()
        self.prefs.save(self)
        super().closeEvent(event)

    def regions(self) -> dict[str, list[int]]:
        """Where the plots are in the window, in window pixels (for screenshot checks)."""
        out = {}
        for name, widget in (("waveform", self.waveform), ("probabilities", self.probabilities),
                             ("emotion", self.emotion_label)):
            top_left = widget.mapTo(self, QtCore.QPoint(0, 0))
            out[name] = [top_left.x(), top_left.y(), widget.width(), widget.height()]
        return out


