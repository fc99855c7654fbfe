"""The live pipeline as every mode drives it (headless and the desktop app), without Qt.

A :class:`LiveSession` owns one classifier for the life of the app and builds a fresh
processor and :class:`~ser_live.engine.Engine` for each source: a device opened by name or
index, a device picked again after a rescan or after it came back, or a file replayed; each
restarts capture, never the app. The engine's worker thread hands every result to the
session's sinks (the headless records) and appends it to a deque, which the GUI thread drains
on its timer; while recording, the worker also writes the audio it reads (WAV) and each result
(CSV), so the GUI thread does no file I/O per frame. A worker that outlives its stop (stuck in
a write) can never write into the next source's deque or recording: the engine closes its
sinks when stopped.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import soundfile

from ser_live.assembly import new_processor
from ser_live.audio_io import keep_header_current
from ser_live.capture import FileSource, MicrophoneSource, list_input_devices
from ser_live.engine import JOIN_TIMEOUT_S, AudioSource, Engine, EngineStats, Sink
from ser_live.errors import DeviceError, SerLiveError
from ser_live.model import EmotionClassifier
from ser_live.processor import ProcessorSettings, StreamProcessor, WindowResult
from ser_live.resources import DEMO_CLIP, resource_path
from ser_live.sinks import CsvSink

RESULT_BACKLOG = 4096  # results the GUI has not drained yet; far more than a stalled GUI collects
WAIT_POLL_S = 0.1  # Ctrl-C is handled between two waits


def demo_clip_path() -> Path | None:
    """The bundled demo clip, or None when it is not installed."""
    return resource_path(DEMO_CLIP)


class Recorder:
    """Writes the session's audio (WAV, at the source's rate and channels) and its probability
    timeline (CSV, the headless CSV columns) while recording is on.

    ``audio`` and ``result`` are called in the worker thread; ``start`` and ``stop`` in the GUI
    thread; a lock keeps them apart. CSV times are seconds into the WAV at the end of each 2 s
    window, so the two files line up (a gap the engine skips is not in the WAV).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wav: soundfile.SoundFile | None = None
        self._csv_stream: TextIO | None = None
        self._csv: CsvSink | None = None
        self._processor: StreamProcessor | None = None
        self._t0_s: float | None = None
        self.wav_path: Path | None = None
        self.csv_path: Path | None = None
        self.frames_written = 0
        self.rows_written = 0

    @property
    def active(self) -> bool:
        return self._wav is not None

    def start(self, wav_path: Path, source: AudioSource, processor: StreamProcessor) -> None:
        wav_path = Path(wav_path)
        csv_path = wav_path.with_suffix(".csv")
        try:
            wav = soundfile.SoundFile(
                str(wav_path), "w", samplerate=source.sample_rate_hz, channels=source.channels, subtype="PCM_16"
            )
        except (soundfile.LibsndfileError, OSError, RuntimeError) as exc:
            raise SerLiveError(f"cannot write {wav_path}: {exc}") from exc
        keep_header_current(wav)
        try:
            csv_stream = csv_path.open("w", newline="")
        except OSError as exc:
            wav.close()
            raise SerLiveError(f"cannot write {csv_path}: {exc.strerror}") from exc
        with self._lock:
            self._wav, self._csv_stream = wav, csv_stream
            self._csv = CsvSink(csv_stream, processor.labels)
            self._processor = processor
            self._t0_s = None
            self.wav_path, self.csv_path = wav_path, csv_path
            self.frames_written = self.rows_written = 0

    def stop(self) -> tuple[Path, Path, float] | None:
        """Close the files; returns (wav, csv, seconds recorded), or None when not recording."""
        with self._lock:
            if self._wav is None or self._csv_stream is None:
                return None
            rate = self._wav.samplerate
            self._wav.close()
            self._csv_stream.close()
            self._wav = self._csv_stream = self._csv = None
            assert self.wav_path is not None and self.csv_path is not None
            return self.wav_path, self.csv_path, self.frames_written / rate

    # -- worker thread ---------------------------------------------------------------------
    def audio(self, block: np.ndarray) -> None:
        with self._lock:
            if self._wav is None or self._processor is None:
                return
            if self._t0_s is None:  # stream time of the first recorded sample
                self._t0_s = self._processor.samples_seen / self._processor.cfg.sample_rate_hz
            self._wav.write(np.clip(block, -1.0, 1.0))
            self.frames_written += len(block)

    def result(self, result: WindowResult) -> None:
        with self._lock:
            if self._csv is None or self._t0_s is None or result.t <= self._t0_s:
                return
            self._csv(dataclasses.replace(result, t=result.t - self._t0_s))
            self.rows_written += 1


class LiveSession:
    """One classifier; one engine at a time, replaced when the source changes."""

    def __init__(
        self, classifier: EmotionClassifier, settings: ProcessorSettings, sinks: Sequence[Sink] = (),
        backlog: bool = True,
    ) -> None:
        """``sinks`` get every result of every source, in the worker thread (headless records).
        With ``backlog`` results also wait for :meth:`drain` (the GUI polls it); headless mode,
        which never drains, turns it off: a full backlog of 4096 results held about 5 MB, and a
        long run's RSS grew by that much before it levelled off."""
        self.classifier = classifier
        self.sinks = list(sinks)
        self.backlog = backlog
        self.engine: Engine | None = None
        self.source: AudioSource | None = None
        self.recorder = Recorder()
        self._results: collections.deque[WindowResult] = collections.deque(maxlen=RESULT_BACKLOG)
        self._microphone: tuple[str | int | None, int | None] | None = None  # the last device asked for
        self.processor = new_processor(classifier, settings)  # labels, rates and hop before any source exists

    @property
    def settings(self) -> ProcessorSettings:
        """The processor's settings: the controls change them there, and each new processor starts from them."""
        return self.processor.settings

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    @property
    def running(self) -> bool:
        return self.engine is not None and self.engine.running

    @property
    def error(self) -> Exception | None:
        """What stopped the last source, if not its end or a stop (see Engine.error)."""
        return self.engine.error if self.engine is not None else None

    @property
    def stats(self) -> EngineStats:
        return self.engine.stats if self.engine is not None else EngineStats()

    @staticmethod
    def devices() -> list[dict[str, Any]]:
        """The input devices present now; PortAudio rescans while no stream is open."""
        return list_input_devices()

    def start_microphone(self, device: str | int | None, device_rate_hz: int | None = None) -> MicrophoneSource:
        """Capture from ``device`` (an index or part of a name; None: the default). Stopped
        first: with no stream open PortAudio rescans, so a device plugged in since is found."""
        self.stop()
        self._microphone = (device, device_rate_hz)
        source = MicrophoneSource(device, self.processor.cfg.sample_rate_hz, device_rate_hz)
        self.start(source)
        return source

    def reconnect(self) -> MicrophoneSource | None:
        """Open the last device asked for again (after it was lost); None while it is still away."""
        if self._microphone is None:
            return None
        try:
            return self.start_microphone(*self._microphone)
        except DeviceError:
            return None

    def play_file(self, path: Path, fast: bool = False, duration_s: float | None = None) -> FileSource:
        """Replay a file through the live path; an unreadable one raises AudioFileError, and what ran goes on."""
        source = FileSource(path, fast=fast)
        self._microphone = None
        self.start(source, duration_s)
        return source

    def start(self, source: AudioSource, duration_s: float | None = None, record_to: Path | None = None) -> None:
        """Stop what runs, then capture from ``source`` with a fresh processor (stream time 0);
        with ``record_to`` (a .wav path), record from the very first sample.

        Raises SerLiveError subclasses (a device that cannot be opened) with nothing running.
        """
        self.stop()
        self._results.clear()
        self.processor = new_processor(self.classifier, self.settings)
        self.source = source
        keep = [self._results.append] if self.backlog else []
        self.engine = Engine(source, self.processor, [*self.sinks, *keep, self.recorder.result],
                             duration_s, audio_sinks=[self.recorder.audio])
        if record_to is not None:
            self.recorder.start(record_to, source, self.processor)
        try:
            self.engine.start()
        except SerLiveError:
            self.recorder.stop()
            self.engine.stop()
            self.engine = None
            raise

    def stop(self) -> None:
        """Stop capture (and recording). Waits for the worker briefly; it polls every few ms."""
        self.recorder.stop()
        if self.engine is not None:
            self.engine.stop()
            self.engine.join(JOIN_TIMEOUT_S)

    def wait(self) -> None:
        """Block until the source ends, the duration is reached or it fails (Ctrl-C raises
        KeyboardInterrupt here; stop() after either)."""
        while self.engine is not None and not self.engine.join(WAIT_POLL_S):
            pass

    def start_recording(self, wav_path: Path) -> None:
        if self.engine is None or self.source is None or not self.running:
            raise SerLiveError("nothing to record: start capture or replay a file first")
        self.recorder.start(wav_path, self.source, self.processor)

    def set_smoothing(self, smoothing_s: float) -> None:
        """Change the smoothing time constant now, without restarting capture."""
        if smoothing_s < 0:
            raise SerLiveError("smoothing must be >= 0")
        self.processor.set_smoothing(smoothing_s)

    def set_gate_level(self, min_level_db: float) -> None:
        """Move the speech gate's level bar now, without restarting capture."""
        self.processor.set_gate_level(min_level_db)

    def new_speaker(self) -> None:
        """Someone else speaks now: the model forgets the voice it adapted to, from the next window."""
        self.processor.new_speaker()

    def drain(self) -> list[WindowResult]:
        """Results that arrived since the last call, oldest first (GUI thread)."""
        out = []
        while True:
            try:
                out.append(self._results.popleft())
            except IndexError:
                return out

    def recent_audio(self, seconds: float) -> np.ndarray | None:
        return self.engine.recent_audio(seconds) if self.engine is not None else None

    def audio_since(self, position: int) -> tuple[np.ndarray, int] | None:
        return self.engine.audio_since(position) if self.engine is not None else None
