"""The feature configuration: the one source of truth shared by training and the live app.

A model's metadata JSON carries a serialized :class:`FeatureConfig`; training writes it, the
runtime reads it back and builds its buffers, windows and features from it, so the two can
never drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)

# window_cmvn: per-band mean removal and one overall spread, over log(mel + log_floor).
# gain_cmvn: the same after a floor set relative_floor_db below the window's loud frames, so the
# features no longer depend on input gain (a quiet microphone looks like a loud one).
# session_cmvn: the same floor, but the session's own speech supplies the band means and spread
# (ser_live.adaptation): what a window says relative to its speaker's usual voice is kept.
NORMALIZATIONS = ("window_cmvn", "gain_cmvn", "session_cmvn")
# logmel: the log-mel bands themselves. mfcc: their orthonormal DCT-II, first n_mfcc coefficients
# (the cepstrum the classic recognizers use), computed from the same floored log-mel frames.
FRONT_ENDS = ("logmel", "mfcc")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end and the analysis window the model sees.

    Frames are not centred (frame ``i`` covers samples ``[i*hop_length, i*hop_length+n_fft)``)
    so that a stream can compute exactly the frames an offline pass computes, a hop at a time.
    """

    sample_rate_hz: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin_hz: float = 50.0
    fmax_hz: float = 8000.0
    log_floor: float = 1e-12  # gain_cmvn sets the effective floor per window; this one only keeps log() finite
    window_s: float = 2.0
    hop_s: float = 0.5
    normalization: str = "gain_cmvn"
    relative_floor_db: float = 37.0  # gain_cmvn: where a fixed 1e-6 floor sat for a RAVDESS window of median level
    front_end: str = "logmel"
    n_mfcc: int = 40  # mfcc: coefficients kept (0 is the frame's overall level, removed again by the mean)
    highpass_hz: float = 40.0  # DC and rumble removed below this before anything looks at the audio

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate_hz <= 0:
            problems.append("sample_rate_hz must be positive")
        if not 0 < self.win_length <= self.n_fft:
            problems.append("win_length must be in (0, n_fft]")
        if self.hop_length <= 0:
            problems.append("hop_length must be positive")
        if problems:  # the checks below divide by these
            raise ValueError("invalid feature config: " + "; ".join(problems))
        if not 0 <= self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2:
            problems.append("need 0 <= fmin_hz < fmax_hz <= sample_rate_hz / 2")
        if self.window_samples < self.n_fft:
            problems.append("window_s is shorter than one FFT frame")
        if self.hop_samples <= 0 or self.hop_samples % self.hop_length:
            problems.append("hop_s must be a positive whole number of hop_length frames")
        if self.window_samples % self.hop_length:
            problems.append("window_s must be a whole number of hop_length frames")
        if not 0 < self.highpass_hz < self.sample_rate_hz / 2:
            problems.append("highpass_hz must be positive and below the Nyquist frequency")
        if self.hop_samples > self.window_samples:
            problems.append("hop_s must not exceed window_s")
        if self.normalization not in NORMALIZATIONS:
            problems.append(f"normalization must be one of {NORMALIZATIONS}")
        if self.front_end not in FRONT_ENDS:
            problems.append(f"front_end must be one of {FRONT_ENDS}")
        if not 1 <= self.n_mfcc <= self.n_mels:
            problems.append("n_mfcc must be in [1, n_mels]")
        if not self.log_floor > 0:
            problems.append("log_floor must be positive (log of zero power)")
        if problems:
            raise ValueError("invalid feature config: " + "; ".join(problems))

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.sample_rate_hz)

    @property
    def hop_samples(self) -> int:
        return round(self.hop_s * self.sample_rate_hz)

    @property
    def frames_per_window(self) -> int:
        """Frames that fit entirely inside one window: the model's time axis."""
        return 1 + (self.window_samples - self.n_fft) // self.hop_length

    @property
    def n_features(self) -> int:
        """Values per frame the model sees: mel bands, or cepstral coefficients."""
        return self.n_mfcc if self.front_end == "mfcc" else self.n_mels

    @property
    def frames_per_hop(self) -> int:
        return self.hop_samples // self.hop_length

    def with_timing(self, window_s: float | None = None, hop_s: float | None = None) -> FeatureConfig:
        """A copy with another hop (and window); the model's input shape fixes the window."""
        values = asdict(self)
        if window_s is not None:
            values["window_s"] = window_s
        if hop_s is not None:
            values["hop_s"] = hop_s
        return FeatureConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown feature config keys: {', '.join(unknown)}")
        return cls(**values)
