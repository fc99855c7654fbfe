"""From audio samples to emotion results, synchronously: front end -> gate -> model -> smoothing.

:class:`StreamProcessor` is the whole per-hop computation with no threads and no devices, so the
live engine, file analysis and tests all run the very same code. Push samples in any chunk
sizes; a result comes out every hop once a full window has been heard, and the chunking never
changes a result.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ser_live.adaptation import SessionNormalizer
from ser_live.config import FeatureConfig
from ser_live.features import FrameFeatures
from ser_live.frontend import AudioTap, StreamingFrontEnd
from ser_live.gate import GateConfig, speech_ratio
from ser_live.model import EmotionClassifier
from ser_live.smoothing import ProbabilitySmoother
from ser_live.vad import SpeechDetector

DEFAULT_SMOOTHING_S = 1.0
# --low-power (a Raspberry Pi, a battery): one result a second instead of the model's hop. The model
# runs half as often; smoothing is a time constant, so the timeline looks the same, only coarser.
LOW_POWER_HOP_S = 1.0
# The front end (filter, features, detector) runs on at least this much audio at a time, or up to
# the end of a window. The engine hands over 20 ms device blocks, and every front-end call has a
# fixed cost of some forty numpy calls: 25 calls a hop took 10 ms where one took 3. Results are
# not delayed (a window's end flushes what waits), but the waveform is fed at this pace, so the
# desktop app gathers only what one redraw shows (ProcessorSettings.front_end_chunk_s).
FRONT_END_CHUNK_S = 0.1


@dataclass(frozen=True)
class ProcessorSettings:
    """Runtime choices; window and hop default to the model's metadata."""

    hop_s: float | None = None
    smoothing_s: float = DEFAULT_SMOOTHING_S
    gate: GateConfig = field(default_factory=GateConfig)
    front_end_chunk_s: float = FRONT_END_CHUNK_S  # see FRONT_END_CHUNK_S


@dataclass
class WindowResult:
    """One hop's verdict. ``label`` and ``probs`` are None when the window holds no speech."""

    t: float  # stream time at the end of the window, s
    speech: bool
    label: str | None
    confidence: float | None
    probs: dict[str, float] | None
    level_db: float  # level of the newest hop, dBFS
    speech_ratio: float  # share of the window's VAD frames that are speech
    frame_probs: np.ndarray  # speech probability of each VAD frame completed in this hop (32 ms each)
    compute_ms: float  # front end + gate + model + smoothing for this window
    latency_ms: float = 0.0  # compute plus queueing and device delay; the engine fills it in
    # speech whose (calibrated) confidence is below the model's uncertain_below: label and probs
    # stay, but nobody should read the label as a verdict
    uncertain: bool = False
    # seconds of speech the session adaptation has heard (None: the model normalizes per window)
    adapted_s: float | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "speech": self.speech,
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "uncertain": self.uncertain,
            "probs": None if self.probs is None else {k: round(v, 4) for k, v in self.probs.items()},
            "speech_ratio": round(self.speech_ratio, 3),
            "adapted_s": None if self.adapted_s is None else round(self.adapted_s, 1),
            "level_db": round(self.level_db, 1),
            "latency_ms": round(self.latency_ms, 2),
        }


class StreamProcessor:
    def __init__(self, classifier: EmotionClassifier, settings: ProcessorSettings | None = None,
                 detector: SpeechDetector | None = None) -> None:
        self.classifier = classifier
        self.settings = settings or ProcessorSettings()
        self.cfg: FeatureConfig = classifier.features.with_timing(hop_s=self.settings.hop_s)
        self.labels = classifier.labels
        self.smoother = ProbabilitySmoother(self.settings.smoothing_s, self.cfg.hop_s)
        self._front = StreamingFrontEnd(self.cfg, detector or SpeechDetector())
        self.adapter = SessionNormalizer(self.cfg, classifier.metadata.adaptation, self.cfg.hop_s)
        self._forget_speaker = False
        self.samples_seen = 0
        self._until_window = self.cfg.window_samples
        self._chunk_samples = round(self.settings.front_end_chunk_s * self.cfg.sample_rate_hz)
        self._waiting: list[np.ndarray] = []  # pushed samples the front end has not had yet
        self._waiting_samples = 0

    def set_smoothing(self, smoothing_s: float) -> None:
        """Change the smoothing time constant between windows (from any thread: the smoother
        is swapped in one assignment, so a window uses the old one or the new one)."""
        self.settings = dataclasses.replace(self.settings, smoothing_s=smoothing_s)
        self.smoother = ProbabilitySmoother(smoothing_s, self.cfg.hop_s)

    def set_gate_level(self, min_level_db: float) -> None:
        """Move the speech gate's level bar between windows (a quiet microphone needs a lower
        one); the settings are swapped in one assignment, as for smoothing."""
        gate = dataclasses.replace(self.settings.gate, min_level_db=min_level_db)
        self.settings = dataclasses.replace(self.settings, gate=gate)

    def new_speaker(self) -> None:
        """Forget the session's voice before the next window (from any thread: a flag the
        worker reads, so a window never sees half-reset statistics)."""
        self._forget_speaker = True

    @property
    def samples_heard(self) -> int:
        """Samples the front end (and the ``tap``) has had: ``samples_seen`` minus those waiting
        for a chunk to fill. The waveform ends here."""
        return self.samples_seen - self._waiting_samples

    def reset(self, t_s: float | None = None) -> None:
        """Start afresh (after a gap in the input); ``t_s`` keeps stream time continuous.
        The session's voice is kept: a gap does not change the speaker. Samples still waiting
        for the front end are dropped with the window they belonged to."""
        self._waiting.clear()
        self._waiting_samples = 0
        self._front.reset()
        self.smoother.reset()
        self._until_window = self.cfg.window_samples
        if t_s is not None:
            self.samples_seen = round(t_s * self.cfg.sample_rate_hz)

    def push(self, samples: np.ndarray, tap: AudioTap | None = None) -> list[WindowResult]:
        """Feed float32 mono samples at the model's rate; returns the windows they completed.
        ``tap`` receives the audio as filtered, as everything downstream sees it (the waveform)."""
        results = []
        samples = np.asarray(samples, dtype=np.float32)
        while len(samples):
            take = min(len(samples), self._until_window)
            started = time.perf_counter()
            self._waiting.append(samples[:take].copy())  # the caller may reuse its buffer
            self._waiting_samples += take
            self.samples_seen += take
            self._until_window -= take
            samples = samples[take:]
            if self._until_window == 0 or self._waiting_samples >= self._chunk_samples:
                waiting = self._waiting[0] if len(self._waiting) == 1 else np.concatenate(self._waiting)
                self._waiting.clear()
                self._waiting_samples = 0
                self._front.push(waiting, tap)
            if self._until_window == 0:
                results.append(self._evaluate(started))
                self._until_window = self.cfg.hop_samples
        return results

    def flush(self) -> list[WindowResult]:
        """At the end of input: a clip shorter than one window is padded so it still gets a verdict."""
        if self.samples_seen and self._front.frames_total < self.cfg.frames_per_window:
            return self.push(np.zeros(self._until_window, dtype=np.float32))
        return []

    def _evaluate(self, started: float) -> WindowResult:
        window = self._front.window()
        gate = self.settings.gate
        speech = window.is_speech(gate)
        label = confidence = probs = None
        uncertain = False
        if self._forget_speaker:
            self._forget_speaker = False
            self.adapter.reset()
        if speech and self.adapter.collecting:  # analyze's first pass: learn the speaker, no verdict
            self.adapter.observe(window.features.logmel)
        elif speech:
            raw = self.classifier.predict(self.adapter.normalize(window.features.logmel))
            smoothed = self.smoother.update(raw)
            best = int(np.argmax(smoothed))
            label, confidence = self.labels[best], float(smoothed[best])
            probs = {name: float(p) for name, p in zip(self.labels, smoothed, strict=True)}
            uncertain = confidence < self.classifier.metadata.calibration.uncertain_below
        else:
            self.smoother.reset()
        compute_ms = (time.perf_counter() - started) * 1000.0
        return WindowResult(
            t=self.samples_seen / self.cfg.sample_rate_hz,
            speech=speech,
            label=label,
            confidence=confidence,
            probs=probs,
            level_db=_hop_level_db(window.features, self.cfg.frames_per_hop),
            speech_ratio=speech_ratio(window.frame_probs, gate),
            frame_probs=window.new_probs,
            compute_ms=compute_ms,
            latency_ms=compute_ms,
            uncertain=uncertain,
            adapted_s=self.adapter.heard_s if self.adapter.adapts else None,
        )


def _hop_level_db(window: FrameFeatures, frames_per_hop: int) -> float:
    """Mean power of the newest hop's frames, in dBFS."""
    power = np.power(10.0, window.level_db[-frames_per_hop:] / 10.0)
    return float(10.0 * np.log10(np.mean(power) + 1e-12))
