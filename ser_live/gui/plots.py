"""The plots and meters of the main window.

Every plot is made once with fixed-size arrays; updates only ``setData`` on them (views of
preallocated buffers), so nothing grows however long the app runs.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ser_live.gui.envelope import Envelope
from ser_live.processor import WindowResult
from ser_live.vad import FRAME_SAMPLES, VAD_SAMPLE_RATE_HZ

FRAME_S = FRAME_SAMPLES / VAD_SAMPLE_RATE_HZ  # one voice-activity frame: 32 ms

WAVEFORM_BINS = 800  # min/max columns across the waveform plot: about one per pixel
HISTORY_S = 30.0
LEVEL_FLOOR_DB = -90.0
LEVEL_WARN_DB = -12.0
LEVEL_CLIP_DB = -3.0
PEAK_HOLD_S = 1.5
WAVEFORM_MIN_RANGE = 0.02  # the waveform's vertical scale never zooms in further than +-0.02
WAVEFORM_RESCALE_FACTOR = 1.6  # rescale only when the signal's peak moves this much (no jitter)
WAVEFORM_PADDING = 0.05  # beyond the waveform's vertical range, a share of it
SILENCE_BRUSH = (150, 150, 150, 55)
SPEECH_BRUSH = (46, 158, 72, 40)  # the waveform's background where the detector heard speech
BACKGROUND = "w"
FOREGROUND = (60, 60, 60)

# One colour per emotion, chosen to stay apart on a white background; other labels take a
# categorical palette in order.
EMOTION_COLOURS: dict[str, tuple[int, int, int]] = {
    "neutral": (127, 127, 127),
    "calm": (23, 170, 190),
    "happy": (240, 160, 0),
    "sad": (31, 100, 200),
    "angry": (214, 39, 40),
    "fearful": (148, 103, 189),
    "disgust": (44, 160, 44),
    "surprised": (227, 100, 190),
}
_FALLBACK = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
             (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def emotion_colours(labels: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    colours = {}
    spare = iter(c for c in _FALLBACK if c not in EMOTION_COLOURS.values())
    for i, label in enumerate(labels):
        colours[label] = EMOTION_COLOURS.get(label.lower()) or next(spare, _FALLBACK[i % len(_FALLBACK)])
    return colours


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options, set before any plot is made.

    ``segmentedLineMode="off"``: every curve is drawn as one path. In its default mode pyqtgraph
    draws a solid line wider than 1 px (the probability curves) as separate segments, handing
    ``QPainter.drawLines`` a slice of a ``sip.array`` whenever the number of segments differs from
    the last allocation, as it does while a silence (NaN) scrolls through the plot; PyQt6-sip
    13.13 never frees such a slice (73 bytes each). Eight curves, each redraw: that was the app's
    RSS creep of ~0.4 MB per 5 minutes (issue #9). A path draws the same lines.
    """
    pg.setConfigOptions(antialias=False, background=BACKGROUND, foreground=FOREGROUND, segmentedLineMode="off")


def _static_plot(widget: pg.PlotWidget, grid: bool) -> pg.PlotItem:
    """A plot that only displays: no mouse zoom, no context menu, no autorange.

    A grid is drawn by the axes across the whole view, so every redraw of a curve repaints
    the axes too: plots redrawn at the frame rate go without one. Even without a grid, an
    axis's bounds overlap the view (ticks, room for labels), so each redraw of the view repaints
    both axes: they are cached as pixmaps, and that costs a copy, not their text drawn again
    (0.6 ms of each waveform redraw before).
    """
    item = widget.getPlotItem()
    item.setMouseEnabled(x=False, y=False)
    item.setMenuEnabled(False)
    item.hideButtons()
    item.disableAutoRange()
    item.setClipToView(True)
    if grid:
        item.showGrid(x=True, y=True, alpha=0.15)
    for name in ("left", "bottom"):
        item.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return item


class FrameHistory:
    """The newest voice-activity frames (32 ms each): fixed-size arrays, oldest first, and a
    band curve that marks the frames on one side of the detector's threshold."""

    def __init__(self, seconds: float, threshold: float) -> None:
        self.threshold = threshold
        self.capacity = math.ceil(seconds / FRAME_S) + 1
        self.count = 0
        self.end_s = np.zeros(self.capacity, dtype=np.float64)  # stream time at each frame's end
        self.probs = np.zeros(self.capacity, dtype=np.float32)
        self._edges = np.zeros(self.capacity + 1, dtype=np.float64)

    def clear(self) -> None:
        self.count = 0

    def add(self, results: list[WindowResult]) -> None:
        """Append each result's new frames; they end at the result's time, 32 ms apart."""
        for result in results:
            n = min(len(result.frame_probs), self.capacity)
            if n == 0:
                continue
            self.end_s[:-n] = self.end_s[n:]
            self.probs[:-n] = self.probs[n:]
            self.end_s[-n:] = result.t - FRAME_S * np.arange(n - 1, -1, -1)
            self.probs[-n:] = result.frame_probs[-n:]
            self.count = min(self.capacity, self.count + n)

    def spans(self, now_s: float, speech: bool) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of each run of frames that are speech (or, with ``speech=False``, that
        are not), in seconds relative to ``now_s``. One span per run, not one step per frame: Qt
        fills a shape at a cost that grows with its corners."""
        n = self.count
        if n == 0:
            return np.zeros(0), np.zeros(0)
        edges = self._edges[-(n + 1) :]  # frame i spans edges[i] to edges[i + 1]
        np.subtract(self.end_s[-n:], now_s, out=edges[1:])
        edges[0] = edges[1] - FRAME_S
        marked = (self.probs[-n:] >= self.threshold) == speech
        # a run starts where a marked frame follows an unmarked one, and ends where it turns back
        turns = np.flatnonzero(np.diff(marked, prepend=False, append=False))
        return edges[turns[0::2]], edges[turns[1::2]]


def span_path(starts: np.ndarray, ends: np.ndarray, low: float, high: float) -> QtGui.QPainterPath:
    """A rectangle from ``low`` to ``high`` over each span. A handful of spans: a loop of
    ``addRect`` costs less than numpy's per-call overhead would."""
    path = QtGui.QPainterPath()
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        path.addRect(QtCore.QRectF(start, low, end - start, high - low))
    return path


class PathItem(pg.GraphicsObject):
    """One path, stroked or filled, within fixed bounds: the waveform and the speech and silence
    bands. A PlotCurveItem recomputes its data bounds and pixel padding and rebuilds its fill
    after each ``setData``, and Qt asks an item for its bounds some ten times a redraw: for the
    waveform and its speech band, redrawn at every frame, that bookkeeping cost about as much as
    the drawing."""

    def __init__(self, bounds: QtCore.QRectF, pen: QtGui.QPen | None = None,
                 brush: QtGui.QBrush | None = None) -> None:
        super().__init__()
        self._bounds = bounds
        self._pen = pen if pen is not None else QtGui.QPen(QtCore.Qt.PenStyle.NoPen)
        self._brush = brush if brush is not None else QtGui.QBrush()
        self.path = QtGui.QPainterPath()

    def set_path(self, path: QtGui.QPainterPath) -> None:
        self.path = path
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt's name)
        return self._bounds

    def paint(self, painter: QtGui.QPainter, option: object, widget: object = None) -> None:
        painter.setPen(self._pen)
        painter.setBrush(self._brush)
        painter.drawPath(self.path)


class WaveformPlot(pg.PlotWidget):
    """The last seconds of audio as a min/max envelope (one pair per bin), newest on the right,
    on a green background where the voice-activity detector heard speech."""

    def __init__(self, seconds: float, sample_rate_hz: int, threshold: float,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.seconds = seconds
        self.sample_rate_hz = sample_rate_hz
        self.frames = FrameHistory(seconds, threshold)
        item = _static_plot(self, grid=False)
        item.setLabel("bottom", "time (s, 0 = now)")
        item.setXRange(-seconds, 0, padding=0)
        self._range = 1.0
        item.setYRange(-self._range, self._range, padding=WAVEFORM_PADDING)
        item.getAxis("left").setWidth(48)
        edges = np.linspace(-seconds, 0, WAVEFORM_BINS, dtype=np.float64)
        self._x = np.repeat(edges, 2)
        self._y = np.zeros(2 * WAVEFORM_BINS, dtype=np.float32)
        self.envelope = Envelope(WAVEFORM_BINS, round(seconds * sample_rate_hz) // WAVEFORM_BINS)
        self.position = 0  # samples of the stream taken in: a count of the engine's waveform ring
        # all the plot can show: the vertical range never goes past +-1 and its padding
        view = QtCore.QRectF(-seconds, -1 - WAVEFORM_PADDING, seconds, 2 + 2 * WAVEFORM_PADDING)
        # The speech band spans +-1, the whole of any vertical range the plot shows.
        self.speech = PathItem(view, brush=pg.mkBrush(*SPEECH_BRUSH))
        item.addItem(self.speech)
        self.curve = PathItem(view, pen=pg.mkPen((40, 90, 160), width=1))
        item.addItem(self.curve)

    def add_results(self, results: list[WindowResult]) -> None:
        self.frames.add(results)

    def clear_history(self) -> None:
        self.frames.clear()
        self.envelope.clear()
        self.position = 0
        self.speech.set_path(QtGui.QPainterPath())

    def show_audio(self, audio: np.ndarray, position: int, now_s: float) -> None:
        """Draw the stream up to sample ``position``, whose last sample is at stream time
        ``now_s``, and the speech band under it. ``audio`` is what came since the last call,
        ending at ``position``; after more than the plot's seconds (a stall, a new source) only
        the newest, and the picture starts afresh from it."""
        if position - self.position != len(audio):
            self.envelope.clear()
        self.position = position
        self.envelope.add(audio)
        self.speech.set_path(span_path(*self.frames.spans(now_s, speech=True), low=-1.0, high=1.0))
        lows, highs = self.envelope.lows, self.envelope.highs
        self._y[0::2] = lows
        self._y[1::2] = highs
        self.curve.set_path(pg.arrayToQPath(self._x, self._y))
        self._autoscale(max(float(highs.max()), -float(lows.min())))

    def _autoscale(self, peak: float) -> None:
        target = min(1.0, max(WAVEFORM_MIN_RANGE, peak * 1.2))
        if target > self._range or target * WAVEFORM_RESCALE_FACTOR < self._range:
            self._range = min(1.0, target * (WAVEFORM_RESCALE_FACTOR ** 0.5))
            self.getPlotItem().setYRange(-self._range, self._range, padding=WAVEFORM_PADDING)

    def waveform_data(self) -> tuple[np.ndarray, np.ndarray]:
        return self._x, self._y


class ProbabilityPlot(pg.PlotWidget):
    """Rolling probabilities of every emotion over the last ``HISTORY_S`` seconds.

    Windows without speech have no probabilities: the curves break there (NaN, drawn with
    ``connect="finite"``). A grey band shades every 32 ms frame the voice-activity detector did
    not hear as speech, so pauses show at the detector's resolution, not the hop's.
    """

    def __init__(
        self,
        labels: tuple[str, ...],
        hop_s: float,
        threshold: float,
        history_s: float = HISTORY_S,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.labels = labels
        self.hop_s = hop_s
        self.history_s = history_s
        self.capacity = math.ceil(history_s / hop_s) + 1
        self.count = 0  # filled slots, at the end of the arrays
        self._t = np.zeros(self.capacity, dtype=np.float64)
        self._probs = np.full((len(labels), self.capacity), np.nan, dtype=np.float32)
        self._silent = np.zeros(self.capacity, dtype=bool)
        self._x = np.zeros(self.capacity, dtype=np.float64)
        self.frames = FrameHistory(history_s, threshold)
        item = _static_plot(self, grid=True)
        item.setLabel("left", "probability")
        item.setLabel("bottom", "time (s, 0 = now)")
        item.setXRange(-history_s, 0, padding=0)
        item.setYRange(0, 1, padding=0.02)
        item.getAxis("left").setWidth(48)
        self.colours = emotion_colours(labels)
        self.silence = PathItem(QtCore.QRectF(-history_s, 0.0, history_s, 1.0), brush=pg.mkBrush(*SILENCE_BRUSH))
        item.addItem(self.silence)
        # Curves hold NaN for silence, so the finite check must run (it is 121 points).
        self.curves = {
            label: item.plot(pen=pg.mkPen(self.colours[label], width=2), connect="finite", name=label)
            for label in labels
        }

    def clear_history(self) -> None:
        self.count = 0
        self._probs.fill(np.nan)
        self._silent.fill(False)
        self.frames.clear()
        for curve in self.curves.values():
            curve.setData([], [])
        self.silence.set_path(QtGui.QPainterPath())

    def add_results(self, results: list[WindowResult]) -> None:
        """Append results (oldest first) and redraw once."""
        if not results:
            return
        for result in results[-self.capacity :]:
            self._t[:-1] = self._t[1:]
            self._probs[:, :-1] = self._probs[:, 1:]
            self._silent[:-1] = self._silent[1:]
            self._t[-1] = result.t
            if result.probs is None:
                self._probs[:, -1] = np.nan
            else:
                self._probs[:, -1] = [result.probs.get(label, np.nan) for label in self.labels]
            self._silent[-1] = result.probs is None
            self.count = min(self.capacity, self.count + 1)
        self.frames.add(results)
        self._redraw()

    def _redraw(self) -> None:
        n = self.count
        np.subtract(self._t, self._t[-1], out=self._x)
        x = self._x[-n:]
        for i, label in enumerate(self.labels):
            self.curves[label].setData(x, self._probs[i, -n:])
        self.silence.set_path(span_path(*self.frames.spans(self._t[-1], speech=False), low=0.0, high=1.0))

    def series(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """(seconds before the newest result, probability) for the slots filled so far."""
        i = self.labels.index(label)
        return self._x[-self.count :].copy(), self._probs[i, -self.count :].copy()

    def silence_mask(self) -> np.ndarray:
        """Per result: True where the window held no speech (the curves break there)."""
        return self._silent[-self.count :].copy()


class LevelMeter(QtWidgets.QWidget):
    """Input level in dBFS: a bar (green, amber near clipping, red at it) with a peak hold, and
    a blue mark at the speech gate's level bar, so a person sees whether their voice reaches it."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_db = LEVEL_FLOOR_DB
        self.peak_db = LEVEL_FLOOR_DB
        self._peak_age_s = 0.0
        self.gate_db: float | None = None
        self.setMinimumHeight(18)
        self.setMaximumHeight(22)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.setToolTip("input level, dBFS")

    def set_level(self, level_db: float, elapsed_s: float) -> None:
        level_db = max(LEVEL_FLOOR_DB, min(0.0, level_db))
        self._peak_age_s += elapsed_s
        peak = self.peak_db
        if level_db >= self.peak_db or self._peak_age_s > PEAK_HOLD_S:
            peak, self._peak_age_s = level_db, 0.0
        if abs(level_db - self.level_db) >= 0.5 or peak != self.peak_db:
            self.level_db, self.peak_db = level_db, peak
            self.update()

    def set_gate(self, gate_db: float) -> None:
        self.gate_db = gate_db
        self.setToolTip(f"input level, dBFS; the blue mark: speech must peak above {gate_db:g} dBFS")
        self.update()

    def _x_of(self, db: float, width: int) -> int:
        return round((db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB * width)

    def paintEvent(self, event: QtGui.QPaintEvent | None) -> None:  # noqa: N802 (Qt's name)
        painter = QtGui.QPainter(self)
        rect = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(rect, QtGui.QColor(235, 235, 235))
        width = rect.width()
        fill = self._x_of(self.level_db, width)
        warn, clip = self._x_of(LEVEL_WARN_DB, width), self._x_of(LEVEL_CLIP_DB, width)
        painter.fillRect(0, 0, min(fill, warn), rect.height() + 1, QtGui.QColor(70, 170, 80))
        if fill > warn:
            painter.fillRect(warn, 0, min(fill, clip) - warn, rect.height() + 1, QtGui.QColor(235, 170, 0))
        if fill > clip:
            painter.fillRect(clip, 0, fill - clip, rect.height() + 1, QtGui.QColor(210, 40, 40))
        if self.peak_db > LEVEL_FLOOR_DB:
            peak_x = self._x_of(self.peak_db, width)
            painter.fillRect(max(0, peak_x - 2), 0, 2, rect.height() + 1, QtGui.QColor(60, 60, 60))
        if self.gate_db is not None and self.gate_db > LEVEL_FLOOR_DB:
            gate_x = self._x_of(self.gate_db, width)
            painter.fillRect(max(0, gate_x - 1), 0, 3, rect.height() + 1, QtGui.QColor(40, 90, 220))
        painter.setPen(QtGui.QColor(40, 40, 40))
        text = f"{self.level_db:.0f} dBFS" if self.level_db > LEVEL_FLOOR_DB else "silent"
        painter.drawText(rect.adjusted(6, 0, -6, 0), QtCore.Qt.AlignmentFlag.AlignVCenter
                         | QtCore.Qt.AlignmentFlag.AlignRight, text)
        painter.end()


class EmotionLegend(QtWidgets.QWidget):
    """The legend of the probability plot: a colour swatch, name and current probability per emotion.

    One row where it fits, else two: eight entries in a row need about 800 px, more than the
    Raspberry Pi's 7" display (800x480) leaves beside the window's margins. Its minimum width is
    the two-row one, so a narrow window can shrink it and it then re-flows.
    """

    def __init__(self, colours: dict[str, tuple[int, int, int]], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(52, 0, 4, 0)
        self._grid.setHorizontalSpacing(14)
        self._grid.setVerticalSpacing(2)
        # the widget decides its minimum (minimumSizeHint), not the current arrangement
        self._grid.setSizeConstraint(QtWidgets.QLayout.SizeConstraint.SetNoConstraint)
        self.entries: dict[str, QtWidgets.QLabel] = {}
        self._cells: list[tuple[QtWidgets.QLabel, QtWidgets.QLabel]] = []
        for label, (r, g, b) in colours.items():
            swatch = QtWidgets.QLabel()
            swatch.setFixedSize(16, 4)
            swatch.setStyleSheet(f"background: rgb({r},{g},{b});")
            text = QtWidgets.QLabel()
            text.setTextFormat(QtCore.Qt.TextFormat.PlainText)
            self._cells.append((swatch, text))
            self.entries[label] = text
        self._columns = 0
        self._top: str | None = None
        self.set_probs(None)
        self._arrange(len(self._cells))

    def _arrange(self, columns: int) -> None:
        """Place the entries in rows of ``columns`` (swatch and text each), a stretch after the last."""
        if columns == self._columns:
            return
        for swatch, text in self._cells:
            self._grid.removeWidget(swatch)
            self._grid.removeWidget(text)
        for i, (swatch, text) in enumerate(self._cells):
            row, col = divmod(i, columns)
            self._grid.addWidget(swatch, row, 2 * col)
            self._grid.addWidget(text, row, 2 * col + 1)
        for col in range(2 * max(columns, self._columns) + 1):
            self._grid.setColumnStretch(col, 1 if col == 2 * columns else 0)
        self._columns = columns
        self.updateGeometry()

    def _width_for(self, columns: int) -> int:
        """Width of the legend laid out in rows of ``columns``, each entry at the widest text it can
        show (its name at 100%, in bold as the top emotion), so the layout does not flip as numbers
        change; a grid column is as wide as its widest entry."""
        swatch = self._cells[0][0].width()
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        metrics = QtGui.QFontMetrics(bold)
        widths = [metrics.horizontalAdvance(f"{label} 100%") for label in self.entries]
        text = sum(max(widths[col::columns]) for col in range(columns))
        margins = self._grid.contentsMargins()
        spacing = self._grid.horizontalSpacing()
        return margins.left() + margins.right() + columns * swatch + text + (2 * columns - 1) * spacing

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        two_rows = -(-len(self._cells) // 2)
        return QtCore.QSize(self._width_for(two_rows), super().minimumSizeHint().height())

    def resizeEvent(self, event: QtGui.QResizeEvent | None) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        one_row = len(self._cells)
        self._arrange(one_row if self.width() >= self._width_for(one_row) else -(-one_row // 2))

    def set_probs(self, probs: dict[str, float] | None) -> None:
        top = max(probs, key=probs.__getitem__) if probs else None
        for label, text in self.entries.items():
            text.setText(f"{label} {probs[label]:.0%}" if probs and label in probs else f"{label}  -")
            font = text.font()
            if font.bold() != (label == top):
                font.setBold(label == top)
                text.setFont(font)
