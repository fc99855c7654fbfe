"""The desktop app's widget logic under pytest-qt (offscreen): real results from the real
processor over the demo clip go through the window's update path; recording, export, a corrupt
file from the open dialog, no microphone, settings and the about box."""

from __future__ import annotations

import csv
import gc
import io
import os
import sys
import threading
import weakref
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication

import numpy as np
import pytest
import soundfile
from PyQt6 import QtCore, QtGui, QtWidgets, sip

from ser_live.audio_io import load_audio
from ser_live.capture import FileSource
from ser_live.gate import GateConfig
from ser_live.gui.about import about_html
from ser_live.gui.plots import FRAME_S, LEVEL_FLOOR_DB, WAVEFORM_BINS, ProbabilityPlot, WaveformPlot
from ser_live.gui.window import IDLE_TEXT, MainWindow
from ser_live.processor import ProcessorSettings, StreamProcessor, WindowResult
from ser_live.session import LiveSession, demo_clip_path

DEMO = demo_clip_path()
FINISH_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def demo_results(classifier) -> list[WindowResult]:  # noqa: ANN001
    """Every result of the demo clip, straight from a StreamProcessor (no threads)."""
    assert DEMO is not None, "assets/demo/ser-live-demo.flac is missing"
    processor = StreamProcessor(classifier, ProcessorSettings())
    results = processor.push(load_audio(DEMO, processor.cfg.sample_rate_hz))
    results += processor.flush()
    assert any(r.speech for r in results) and any(not r.speech for r in results)
    return results


@pytest.fixture
def window(qtbot, classifier, tmp_path: Path) -> MainWindow:  # noqa: ANN001
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(LiveSession(classifier, ProcessorSettings()), settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def wait_until_finished(qtbot, win: MainWindow) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not win.session.running, timeout=FINISH_TIMEOUT_MS)
    win.tick()


def test_results_reach_plot_legend_and_label(window: MainWindow, demo_results: list[WindowResult]) -> None:
    assert window.emotion_label.text() == IDLE_TEXT
    window.show_results(demo_results)
    plot = window.probabilities
    assert plot.count == len(demo_results) <= plot.capacity
    for label in window.labels:
        x, y = plot.series(label)
        assert np.allclose(x, [r.t - demo_results[-1].t for r in demo_results])
        expected = [np.nan if r.probs is None else r.probs[label] for r in demo_results]
        assert np.allclose(y, expected, atol=1e-6, equal_nan=True)
    assert list(plot.silence_mask()) == [not r.speech for r in demo_results]
    # grey bands follow the detector's 32 ms frames; the waveform's green band is their complement
    frames = np.concatenate([r.frame_probs for r in demo_results])[-plot.frames.capacity :]
    threshold = window.session.settings.gate.frame_threshold
    grey = shaded(plot, plot.silence.path, demo_results[-1].t, 0.5)
    assert np.array_equal(grey, frames < threshold) and 0 < np.sum(grey) < len(grey)
    window.waveform.show_audio(np.zeros(16000, np.float32), 16000, demo_results[-1].t)
    green = shaded(window.waveform, window.waveform.speech.path, demo_results[-1].t, 0.0)
    assert np.array_equal(green, frames[-len(green) :] >= threshold) and green.any()
    # one shape per run of frames, not a step per frame
    assert window.waveform.speech.path.elementCount() <= 4 * (np.count_nonzero(np.diff(green)) + 1)
    last = demo_results[-1]
    if last.speech and not last.uncertain:
        assert window.emotion_label.text() == last.label
        assert window.confidence_label.text() == f"confidence {last.confidence:.0%}"
    if last.speech:
        assert "speech" in window.speech_indicator.text()
        assert window.legend.entries[last.label].font().bold()
    else:
        assert window.emotion_label.text() == "silence"


def shaded(plot: ProbabilityPlot | WaveformPlot, path: QtGui.QPainterPath, now_s: float, y: float) -> np.ndarray:
    """Per voice-activity frame the plot holds: is its middle inside the band ``path`` draws, at height ``y``."""
    ends = plot.frames.end_s[-plot.frames.count :] - now_s
    return np.array([path.contains(QtCore.QPointF(x, y)) for x in ends - FRAME_S / 2])


def test_the_waveform_draws_each_column_from_its_lowest_to_its_highest_sample(qtbot) -> None:  # noqa: ANN001
    seconds, rate = 5.0, 16000
    plot = WaveformPlot(seconds, rate, threshold=0.5)
    qtbot.addWidget(plot)
    per_column = round(seconds * rate) // WAVEFORM_BINS
    loudness = np.repeat(np.linspace(0.01, 0.9, WAVEFORM_BINS), per_column)
    audio = (np.random.default_rng(0).uniform(-1, 1, len(loudness)) * loudness).astype(np.float32)
    plot.show_audio(audio, len(audio), now_s=seconds)
    path = plot.curve.path
    points = np.array([(path.elementAt(i).x, path.elementAt(i).y) for i in range(path.elementCount())])
    columns = audio.reshape(WAVEFORM_BINS, per_column)
    assert points.shape == (2 * WAVEFORM_BINS, 2)
    np.testing.assert_array_equal(points[0::2, 1], columns.min(axis=1))
    np.testing.assert_array_equal(points[1::2, 1], columns.max(axis=1))
    # one vertical stroke per column, oldest at -5 s, newest at 0 s
    assert np.array_equal(points[0::2, 0], points[1::2, 0]) and np.all(np.diff(points[0::2, 0]) > 0)
    assert (points[0, 0], points[-1, 0]) == (-seconds, 0.0)


def test_the_waveform_is_the_same_however_the_redraws_took_the_audio_in(qtbot) -> None:  # noqa: ANN001
    """Each redraw takes in only the audio new since the last: the columns come out as if the
    newest 5 s were scanned at once, whatever the sizes of the pieces, and a stall longer than
    the plot (the audio in between lost) starts the picture afresh."""
    seconds, rate = 5.0, 16000
    rng = np.random.default_rng(1)
    stream = (rng.standard_normal(9 * rate) * np.repeat(rng.uniform(0, 0.5, 9 * 20), rate // 20)).astype(np.float32)
    plot = WaveformPlot(seconds, rate, threshold=0.5)
    qtbot.addWidget(plot)
    position = 0
    while position < len(stream):
        end = min(len(stream), position + int(rng.integers(0, 2000)))
        plot.show_audio(stream[position:end], end, now_s=end / rate)
        position = end
    per_column = plot.envelope.per_column
    columns = stream[: len(stream) // per_column * per_column].reshape(-1, per_column)[-WAVEFORM_BINS:]
    np.testing.assert_array_equal(plot.envelope.lows, columns.min(axis=1))
    np.testing.assert_array_equal(plot.envelope.highs, columns.max(axis=1))
    newest = stream[-round(seconds * rate) :]
    plot.show_audio(newest, len(stream) + 20 * rate, now_s=len(stream) / rate + 20)  # 20 s later
    np.testing.assert_array_equal(plot.envelope.highs, newest.reshape(WAVEFORM_BINS, per_column).max(axis=1))


def test_an_uncertain_verdict_is_called_uncertain_with_its_best_guess(window: MainWindow,
                                                                      demo_results: list[WindowResult]) -> None:
    """Below the model's confidence threshold the big label says 'uncertain', not an emotion;
    the best guess, its confidence and the probabilities stay on screen."""
    import dataclasses

    speech = [r for r in demo_results if r.speech]
    sure, unsure = dataclasses.replace(speech[-1], uncertain=False), dataclasses.replace(speech[-1], uncertain=True)
    window.show_results([unsure])
    assert window.emotion_label.text() == "uncertain"
    assert window.confidence_label.text() == f"maybe {unsure.label} ({unsure.confidence:.0%})"
    assert window.legend.entries[unsure.label].font().bold()
    window.show_results([sure])
    assert window.emotion_label.text() == sure.label


def test_an_adapting_model_shows_the_voice_warming_up_and_forgets_it_on_new_speaker(
        qtbot, session_model: Path, classifier, tmp_path: Path) -> None:  # noqa: ANN001
    from ser_live.model import EmotionClassifier

    adapting = EmotionClassifier(session_model)
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(LiveSession(adapting, ProcessorSettings()), settings)
    qtbot.addWidget(win)
    win.show()
    assert win.new_speaker_button.isVisible() and win.adapt_label.isVisible()
    assert win.adapt_label.text() == "voice: learning (0.0 of 5 s)"
    processor = StreamProcessor(adapting, ProcessorSettings())
    results = processor.push(load_audio(DEMO, processor.cfg.sample_rate_hz))
    win.show_results(results)
    heard = results[-1].adapted_s
    assert heard >= 5 and win.adapt_label.text() == f"voice: adapted ({heard:.0f} s of speech)"
    qtbot.mouseClick(win.new_speaker_button, QtCore.Qt.MouseButton.LeftButton)
    assert win.adapt_label.text() == "voice: learning (0.0 of 5 s)"
    assert win.session.processor._forget_speaker  # the worker forgets before its next window
    win.close()
    if classifier.metadata.adaptation is None:  # a model that normalizes per window has nothing to show
        plain = MainWindow(LiveSession(classifier, ProcessorSettings()), settings)
        qtbot.addWidget(plain)
        plain.show()
        assert not plain.new_speaker_button.isVisible() and not plain.adapt_label.isVisible()
        plain.close()


def test_silence_is_shown_as_silence_not_an_emotion(window: MainWindow, classifier) -> None:  # noqa: ANN001
    processor = StreamProcessor(classifier, ProcessorSettings())
    results = processor.push(np.zeros(round(4.0 * processor.cfg.sample_rate_hz), dtype=np.float32))
    assert results and not any(r.speech for r in results)
    window.show_results(results)
    assert window.emotion_label.text() == "silence"
    assert "silence" in window.speech_indicator.text()
    assert all(text.text().endswith("-") for text in window.legend.entries.values())
    for label in window.labels:
        assert np.all(np.isnan(window.probabilities.series(label)[1]))
    assert window.probabilities.silence_mask().all()


def test_the_plot_never_grows(window: MainWindow, demo_results: list[WindowResult]) -> None:
    plot = window.probabilities
    shapes = (plot._t.shape, plot._probs.shape)
    for _ in range(4):  # the demo clip is ~35 results; 30 s of history holds 61
        window.show_results(demo_results)
    assert plot.count == plot.capacity
    assert (plot._t.shape, plot._probs.shape) == shapes
    x, _ = plot.series(window.labels[0])
    assert x[-1] == 0 and x[0] >= -plot.history_s


def test_redrawing_the_plots_allocates_nothing_that_stays(window: MainWindow,
                                                        demo_results: list[WindowResult]) -> None:
    """Each result redrawn (silences entering and leaving the plot, so the curves' finite segments
    change in number) leaves no Python allocation behind: a leak of one small block per curve
    per redraw (a sip.array slice, issue #9) was the app's RSS creep of ~0.4 MB per 5 minutes."""
    image = QtGui.QImage(window.probabilities.size(), QtGui.QImage.Format.Format_RGB32)

    def redraw_one_by_one(results: list[WindowResult]) -> None:
        for result in results:
            window.show_results([result])
            painter = QtGui.QPainter(image)
            window.probabilities.render(painter)
            painter.end()

    redraw_one_by_one(demo_results * 3)  # warm: caches filled, the history full
    redraws = demo_results * 6
    growth = []
    for _ in range(3):  # a leak grows every round; whatever else the process allocates meanwhile does not
        gc.collect()
        before = sys.getallocatedblocks()
        redraw_one_by_one(redraws)
        gc.collect()
        growth.append(sys.getallocatedblocks() - before)
    assert min(growth) < len(redraws) // 4, f"blocks more after each round of {len(redraws)} redraws: {growth}"


def test_replay_through_the_live_pipeline_draws_waveform_and_results(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    assert DEMO is not None
    assert window.play_file(DEMO, fast=True)
    wait_until_finished(qtbot, window)
    assert window.session.error is None
    assert window.probabilities.count > 0
    assert window.emotion_label.text() != IDLE_TEXT
    _, y = window.waveform.waveform_data()
    assert np.ptp(y) > 0.01  # the last seconds of the clip are on screen
    assert window.start_action.text() == "Start"
    assert "finished" in window.statusBar().currentMessage()


def test_a_new_source_starts_the_waveform_afresh(qtbot, window: MainWindow, tmp_path: Path) -> None:  # noqa: ANN001
    """The waveform keeps its own position in the stream and takes in only new audio: a new source
    (a new stream counted from 0) must not show the last one's audio, however far either got."""
    assert DEMO is not None
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(3 * 16000, np.float32), 16000)
    for first, second in ((DEMO, silent), (silent, DEMO)):
        assert window.play_file(first, fast=True)
        wait_until_finished(qtbot, window)
        assert window.play_file(second, fast=True)
        wait_until_finished(qtbot, window)
        _, y = window.waveform.waveform_data()
        if second == silent:
            assert np.abs(y).max() == 0.0  # nothing of the demo clip is left on screen
        else:
            assert np.ptp(y) > 0.01  # the clip's last seconds are


def test_session_recording_writes_the_audio_and_the_timeline(classifier, tmp_path: Path) -> None:  # noqa: ANN001
    assert DEMO is not None
    session = LiveSession(classifier, ProcessorSettings())
    wav = tmp_path / "take.wav"
    source = FileSource(DEMO, fast=True)
    session.start(source, record_to=wav)
    assert session.engine is not None and session.engine.join(timeout=60)
    results = session.drain()
    wav_path, csv_path, seconds = session.recorder.stop() or (None, None, 0.0)
    assert wav_path == wav and csv_path == tmp_path / "take.csv"
    audio, rate = soundfile.read(wav, dtype="float32")
    original = load_audio(DEMO, 16000)
    assert rate == 16000 and np.allclose(audio, original, atol=1.5 / 32768)
    assert seconds == pytest.approx(len(original) / rate)
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == len(results) > 0
    assert [float(r["t"]) for r in rows] == pytest.approx([round(r.t, 3) for r in results])
    for row, result in zip(rows, results, strict=True):
        assert row["label"] == (result.label or "")
        if result.speech:
            assert sum(float(row[f"p_{x}"]) for x in session.labels) == pytest.approx(1.0, abs=0.01)


def test_recording_from_the_window_while_replaying(qtbot, window: MainWindow, tmp_path: Path) -> None:  # noqa: ANN001
    assert DEMO is not None
    assert window.play_file(DEMO, fast=True)
    assert window.start_recording(tmp_path / "session")  # the .wav suffix is added
    assert window.record_action.isChecked()
    wait_until_finished(qtbot, window)
    assert not window.record_action.isChecked()  # the end of the replay closed the files
    info = soundfile.info(str(tmp_path / "session.wav"))
    assert info.samplerate == 16000 and 0 < info.frames <= soundfile.info(str(DEMO)).frames
    rows = list(csv.DictReader(io.StringIO((tmp_path / "session.csv").read_text())))
    times = [float(r["t"]) for r in rows]
    assert rows and times[0] > 0 and np.allclose(np.diff(times), 0.5)
    assert times[-1] <= info.frames / info.samplerate + 1e-3


def test_corrupt_file_from_the_dialog_is_reported_and_the_app_keeps_running(
    qtbot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    window.open_file_dialog()
    boxes = window.open_messages
    assert len(boxes) == 1 and boxes[0].isVisible()
    assert "broken.wav" in boxes[0].text()
    assert "broken.wav" in window.statusBar().currentMessage()
    assert window.isVisible() and not window.session.running
    boxes[0].accept()
    qtbot.waitUntil(lambda: not window.open_messages)
    assert DEMO is not None and window.play_file(DEMO, fast=True)  # and it still works
    wait_until_finished(qtbot, window)
    assert window.probabilities.count > 0


def test_no_microphone_says_so_and_offers_the_demo_clip(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    assert not window.start_microphone("no-such-input-device-anywhere")
    assert window.banner.isVisible()
    assert "No microphone" in window.banner_text.text()
    assert "no-such-input-device-anywhere" in window.banner_text.text()
    assert window.banner_demo.isEnabled()
    qtbot.mouseClick(window.banner_demo, QtCore.Qt.MouseButton.LeftButton)
    assert window.session.running or window.session.stats.windows > 0
    assert not window.banner.isVisible()
    window.stop_capture()


def test_export_plot_png(window: MainWindow, demo_results: list[WindowResult], tmp_path: Path) -> None:
    window.show_results(demo_results)
    assert window.export_plot(tmp_path / "plot")
    image = QtGui.QImage(str(tmp_path / "plot.png"))
    assert not image.isNull() and image.size() == window.prob_panel.size()


def test_smoothing_control_applies_at_once(window: MainWindow) -> None:
    window.smoothing_spin.setValue(0.0)
    assert window.session.settings.smoothing_s == 0.0
    assert window.session.processor.smoother.keep == 0.0
    window.smoothing_spin.setValue(2.0)
    assert window.session.processor.smoother.keep == pytest.approx(np.exp(-0.5 / 2.0))


def test_speech_gate_control_applies_at_once_and_marks_the_level_meter(window: MainWindow) -> None:
    assert window.level_meter.gate_db == window.gate_spin.value() == window.session.settings.gate.min_level_db
    window.gate_spin.setValue(-48.0)
    assert window.session.settings.gate.min_level_db == -48.0
    assert window.session.processor.settings.gate.min_level_db == -48.0
    assert window.level_meter.gate_db == -48.0 and "-48" in window.level_meter.toolTip()
    meter = window.level_meter.grab().toImage()
    x = round((-48.0 - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB * (meter.width() - 1))
    assert meter.pixelColor(x, meter.height() // 2) == QtGui.QColor(40, 90, 220)  # the mark is drawn there


def test_geometry_and_choices_are_remembered(qtbot, classifier, tmp_path: Path) -> None:  # noqa: ANN001
    def settings() -> QtCore.QSettings:
        return QtCore.QSettings(str(tmp_path / "remember.ini"), QtCore.QSettings.Format.IniFormat)

    first = MainWindow(LiveSession(classifier, ProcessorSettings()), settings())
    qtbot.addWidget(first)
    first.show()
    first.resize(760, 560)  # inside the offscreen screen (800 x 600): restoring clamps to it
    size = first.size()
    first.smoothing_spin.setValue(2.5)
    first.gate_spin.setValue(-50.0)
    first.close()
    second = MainWindow(LiveSession(classifier, ProcessorSettings()), settings())
    qtbot.addWidget(second)
    second.show()
    assert second.size() == size != MainWindow.default_size()
    assert second.smoothing_spin.value() == 2.5 and second.session.settings.smoothing_s == 2.5
    assert second.gate_spin.value() == -50.0 and second.session.processor.settings.gate.min_level_db == -50.0
    second.close()
    # a value given on the command line wins over the remembered one
    given = ProcessorSettings(gate=GateConfig(min_level_db=-40.0))
    third = MainWindow(LiveSession(classifier, given), settings(), command_line={"gate_db"})
    qtbot.addWidget(third)
    assert third.gate_spin.value() == -40.0 and third.session.settings.gate.min_level_db == -40.0
    assert third.smoothing_spin.value() == 2.5
    third.close()


def test_about_box_shows_the_model_card(window: MainWindow) -> None:
    text = about_html(window.session)
    meta = window.session.classifier.metadata
    assert meta.name in text and all(label in text for label in meta.labels)
    for key in meta.card:
        assert key.replace("_", " ") in text
    window.show_about()
    assert any("model card" in b.text() or meta.name in b.text() for b in window.open_messages)
    for box in window.open_messages:
        box.accept()


def test_a_closed_window_goes_with_its_last_reference(qtbot, classifier, tmp_path: Path) -> None:  # noqa: ANN001
    """No reference cycle through the window (a slot closing over self): otherwise its C++ side
    is destroyed whenever the cyclic GC next runs, which can be inside a callback Qt is making
    into one of its widgets, and Qt then segfaults (seen in pytest-qt's _process_events)."""
    settings = QtCore.QSettings(str(tmp_path / "gone.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(LiveSession(classifier, ProcessorSettings()), settings)
    qtbot.addWidget(win)
    win.show()
    win.show_about()
    for box in win.open_messages:
        box.accept()
    win.rescan_action.trigger()
    win.close()
    gone, label = weakref.ref(win), win.emotion_label
    enabled = gc.isenabled()
    gc.disable()
    try:
        del win
        assert gone() is None and sip.isdeleted(label)
    finally:
        if enabled:
            gc.enable()


@pytest.mark.slow
def test_device_plugged_in_after_launch_then_switching_devices(
    qtbot, classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    """Real PortAudio capture: the app starts with no sound server (no microphone), one comes
    up (as a USB microphone would be plugged in), F5 finds it, and switching between its two
    devices restarts capture without restarting the app; speech played in is shown each time."""
    from tests.conftest import fixture_clips
    from tests.pulse import PulseServer

    server = PulseServer(tmp_path / "pulse")
    for key, value in server.client_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PULSE_SERVER", server.env["PULSE_RUNTIME_PATH"] + "/native")
    settings = QtCore.QSettings(str(tmp_path / "devices.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(LiveSession(classifier, ProcessorSettings()), settings)
    qtbot.addWidget(win)
    win.show()
    assert not win.start_microphone()
    assert "No microphone" in win.banner_text.text() and not win.device_combo.isEnabled()
    clip = next(c for c in fixture_clips() if "-05-02-" in c.name)  # angry, strong intensity
    server.start()
    try:
        win.rescan_action.trigger()
        names = [win.device_combo.itemText(i) for i in range(win.device_combo.count())]
        assert win.device_combo.isEnabled() and "pulse (ALSA)" in names and "default (ALSA)" in names, names
        for name in ("pulse", "default"):
            index = names.index(f"{name} (ALSA)")
            win.device_combo.setCurrentIndex(index)
            win.device_combo.activated.emit(index)  # what a pick by the user sends
            qtbot.waitUntil(lambda: win.session.running and win.last_result is not None, timeout=10_000)
            assert win.session.source is not None and win.session.source.name == name
            assert not win.banner.isVisible() and name in win.status_source.text()
            player = threading.Thread(target=server.play, args=(clip,))
            player.start()
            qtbot.waitUntil(lambda: win.last_result is not None and win.last_result.speech, timeout=15_000)
            player.join()
            assert win.emotion_label.text() != IDLE_TEXT
        win.stop_capture()
    finally:
        win.close()
        server.kill()


@pytest.mark.slow
def test_a_lost_device_is_reported_once_and_picked_up_again(
    qtbot, classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]  # noqa: ANN001
) -> None:
    """The sound server dies mid-capture (as when PulseAudio restarts): the window says so in
    one line and in its banner, keeps trying the device, and captures again once it is back."""
    from tests.conftest import fixture_clips
    from tests.pulse import PulseServer

    server = PulseServer(tmp_path / "pulse")
    for key, value in server.client_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PULSE_SERVER", server.env["PULSE_RUNTIME_PATH"] + "/native")
    settings = QtCore.QSettings(str(tmp_path / "lost.ini"), QtCore.QSettings.Format.IniFormat)
    server.start()
    win = MainWindow(LiveSession(classifier, ProcessorSettings()), settings)
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.start_microphone("pulse")
        qtbot.waitUntil(lambda: win.last_result is not None, timeout=15_000)
        server.kill()
        qtbot.waitUntil(lambda: not win.session.running and win.reconnect_timer.isActive(), timeout=30_000)
        assert "No microphone" in win.banner_text.text()
        server.start()
        qtbot.waitUntil(lambda: win.session.running and not win.banner.isVisible(), timeout=30_000)
        player = threading.Thread(target=server.play, args=(fixture_clips()[4],))
        player.start()
        qtbot.waitUntil(lambda: win.last_result is not None and win.last_result.speech, timeout=15_000)
        player.join()
        win.stop_capture()
    finally:
        win.close()
        server.kill()
    lost = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ser-live: input lost")]
    assert len(lost) == 1, lost
