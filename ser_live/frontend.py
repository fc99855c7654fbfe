"""The audio front end: DC/rumble filter, then log-mel features and voice activity, per window.

Everything that looks at the audio sees it filtered (``highpass.py``): the features, the level,
the voice-activity detector and the GUI's waveform. :class:`StreamingFrontEnd` does it a hop at
a time for the live app and ``analyze``; :func:`offline_front_end` does it for a whole clip in
training and evaluation. Both filter on the same block grid and run the detector at the same
stream positions (the end of the first window, then every hop), so a window's features and
speech frames are identical either way, whatever the chunking (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ser_live.config import FeatureConfig
from ser_live.errors import ModelError
from ser_live.features import FrameFeatures, StreamingFeatures, offline_features
from ser_live.gate import GateConfig, is_speech, loud_level_db, vad_frames_per_window
from ser_live.highpass import HighPass, highpass
from ser_live.vad import FRAME_SAMPLES, VAD_SAMPLE_RATE_HZ, SpeechDetector

AudioTap = Callable[[np.ndarray], None]

# Silero VAD is level-sensitive: RAVDESS speech played 30 dB quieter lost half its speech frames.
# So the detector hears each hop raised until the window's loud frames reach VAD_TARGET_DB (never
# lowered: turning loud input down gained nothing on shouted speech and let more non-speech in;
# at most VAD_MAX_GAIN_DB): a quiet microphone is detected like a loud one. Very quiet noise raised
# this way is still noise to the detector, and the gate's level floor still applies.
VAD_TARGET_DB = -25.0
VAD_MAX_GAIN_DB = 60.0


def vad_gain(loud_db: float) -> float:
    """Linear gain for the detector's input, from the current window's loud level."""
    raise_db = min(max(VAD_TARGET_DB - loud_db, 0.0), VAD_MAX_GAIN_DB)
    return float(10.0 ** (raise_db / 20.0))


def check_rate(cfg: FeatureConfig) -> None:
    if cfg.sample_rate_hz != VAD_SAMPLE_RATE_HZ:
        raise ModelError(
            f"the model expects {cfg.sample_rate_hz} Hz, but the speech detector runs at {VAD_SAMPLE_RATE_HZ} Hz"
        )


@dataclass
class Window:
    """What a window holds for the gate and the model."""

    features: FrameFeatures  # the window's feature frames
    frame_probs: np.ndarray  # speech probability of each of its VAD frames, oldest first
    new_probs: np.ndarray  # those that completed since the previous window (the GUI shows them)
    loud_db: float  # level of its loud frames (gate.loud_level_db): the gate's floor and the detector's gain

    def is_speech(self, gate: GateConfig) -> bool:
        return is_speech(self.frame_probs, self.loud_db, gate)


class StreamingFrontEnd:
    """Samples in, one :class:`Window` out when the caller asks (at the end of each hop)."""

    def __init__(self, cfg: FeatureConfig, detector: SpeechDetector) -> None:
        check_rate(cfg)
        self.cfg = cfg
        self._highpass = HighPass(cfg.sample_rate_hz, cfg.hop_length, cfg.highpass_hz)
        self._features = StreamingFeatures(cfg)
        self._detector = detector
        self._probs = np.zeros(vad_frames_per_window(cfg.window_samples), dtype=np.float32)

    def reset(self) -> None:
        self._highpass.reset()
        self._features.reset()
        self._detector.reset()
        self._probs.fill(0.0)

    @property
    def frames_total(self) -> int:
        return self._features.frames_total

    def push(self, samples: np.ndarray, tap: AudioTap | None = None) -> None:
        """Filter ``samples`` and feed features and detector; ``tap`` gets the filtered audio."""
        filtered = self._highpass.push(samples)
        if len(filtered):
            self._features.push(filtered)
            self._detector.push(filtered)
            if tap is not None:
                tap(filtered)

    def window(self) -> Window:
        """The newest window; runs the detector on the frames completed since the last call."""
        features = self._features.window()
        loud_db = loud_level_db(features.level_db)
        new = self._detector.run(vad_gain(loud_db))
        keep = min(len(new), len(self._probs))
        if keep:
            self._probs[:-keep] = self._probs[keep:]
            self._probs[-keep:] = new[-keep:]
        return Window(features, self._probs.copy(), new, loud_db)


@dataclass
class ClipAnalysis:
    """A whole clip through the front end: every feature frame and every VAD frame."""

    features: FrameFeatures
    frame_probs: np.ndarray  # (vad frames,) speech probability

    def window(self, first_frame: int, cfg: FeatureConfig) -> Window:
        """The window that starts at feature frame ``first_frame``, as the stream would see it."""
        span = slice(first_frame, first_frame + cfg.frames_per_window)
        end_sample = first_frame * cfg.hop_length + cfg.window_samples
        last = end_sample // FRAME_SAMPLES
        first = last - vad_frames_per_window(cfg.window_samples)
        probs = self.frame_probs[max(first, 0) : last]
        if first < 0:
            probs = np.concatenate([np.zeros(-first, dtype=np.float32), probs])
        features = FrameFeatures(self.features.logmel[span], self.features.level_db[span])
        return Window(features, probs, np.zeros(0, dtype=np.float32), loud_level_db(features.level_db))


def offline_front_end(audio: np.ndarray, cfg: FeatureConfig, detector: SpeechDetector) -> ClipAnalysis:
    """Filter, features and speech probabilities of a whole clip (float32 mono at the model's rate)."""
    check_rate(cfg)
    filtered = highpass(np.asarray(audio, dtype=np.float32), cfg.sample_rate_hz, cfg.hop_length, cfg.highpass_hz)
    features = offline_features(filtered, cfg)
    detector.reset()
    probs = []
    # the detector runs where the stream runs it, at the same gain: at the end of the first
    # window, then every hop (the tail after the last window at the last window's gain)
    gain = vad_gain(loud_level_db(features.level_db[: cfg.frames_per_window]))
    start = 0
    for end in range(cfg.window_samples, len(filtered) + 1, cfg.hop_samples):
        first = (end - cfg.window_samples) // cfg.hop_length
        gain = vad_gain(loud_level_db(features.level_db[first : first + cfg.frames_per_window]))
        detector.push(filtered[start:end])
        probs.append(detector.run(gain))
        start = end
    detector.push(filtered[start:])
    probs.append(detector.run(gain))
    detector.reset()
    return ClipAnalysis(features, np.concatenate(probs))
