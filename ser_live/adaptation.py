"""Session adaptation: normalize each window by the running statistics of the session's own speech.

A voice and a microphone shift every band of the features. Window normalization
(``window_cmvn``/``gain_cmvn``) removes that shift with each window's own band means, and with
it what the window says about the voice *relative to itself*: an angry window's brighter
spectrum looks like a neutral one's. ``session_cmvn`` subtracts the session's band means instead,
estimated from the speech windows heard so far (live: a decaying average, about a minute of
memory; a file or a folder: all of its speech), blended with a prior (the training speakers'
average) that counts as ``prior_s`` seconds of speech, so the first window is already
reasonable and a few seconds of speech make the estimate the speaker's own.

Every feature is first taken relative to the window's loud level (``relative_features``), so
input gain never changes a window, only the session statistics of its spectral shape do.
Training simulates sessions of random length from each speaker's clips, with the same
arithmetic (:func:`blend`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_live.config import FeatureConfig
from ser_live.features import normalize_window, relative_features

_SPREAD_EPS = 1e-3
# How ``analyze`` lets a session-adapting model learn the speaker of a file (``--adapt-by``): from
# every file in the same folder (default: a folder is usually one person's or one microphone's
# recordings; pooling a folder of several speakers measured no worse than each file alone), from
# the file alone, or as the live app does, from the speech heard so far in the file. The first
# two listen to the audio once, then judge it.
ADAPT_BY = ("folder", "file", "stream")


@dataclass(frozen=True)
class AdaptationPrior:
    """The training speakers' average band moments and how the session estimate uses them.

    ``mean`` and ``square`` are per band (or cepstral coefficient) first and second moments of
    :func:`relative_features`; ``prior_s`` is how many seconds of speech the prior counts as,
    ``memory_s`` the live estimate's time constant, ``warm_s`` the seconds of speech after
    which the session counts as adapted (the GUI says so).
    """

    mean: tuple[float, ...]
    square: tuple[float, ...]
    prior_s: float = 2.0
    memory_s: float = 60.0
    warm_s: float = 5.0

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.square) or not self.mean:
            raise ValueError("adaptation mean and square must be non-empty and of equal length")
        values = np.asarray(self.mean + self.square + (self.prior_s, self.memory_s, self.warm_s))
        if not np.all(np.isfinite(values)):
            raise ValueError("adaptation values must be finite")
        if self.prior_s <= 0 or self.memory_s <= 0 or self.warm_s < 0:
            raise ValueError("adaptation prior_s and memory_s must be positive, warm_s not negative")

    def to_dict(self) -> dict:
        return {"mean": [round(v, 6) for v in self.mean], "square": [round(v, 6) for v in self.square],
                "prior_s": self.prior_s, "memory_s": self.memory_s, "warm_s": self.warm_s}

    @classmethod
    def from_dict(cls, values: dict) -> AdaptationPrior:
        return cls(tuple(float(v) for v in values["mean"]), tuple(float(v) for v in values["square"]),
                   float(values.get("prior_s", 2.0)), float(values.get("memory_s", 60.0)),
                   float(values.get("warm_s", 5.0)))


def window_moments(relative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band mean and mean square over a window's frames (``(..., frames, bands)``)."""
    return relative.mean(axis=-2, dtype=np.float64), np.square(relative).mean(axis=-2, dtype=np.float64)


def blend(prior: AdaptationPrior, sum_mean: np.ndarray, sum_square: np.ndarray, weight_s: np.ndarray | float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Band means and one overall spread from speech moments summed with ``weight_s`` seconds of
    weight (each window weighs a hop), plus the prior's ``prior_s`` seconds. Broadcasts over
    leading axes, so training blends a batch of simulated sessions at once."""
    weight = np.asarray(weight_s, dtype=np.float64)[..., None]
    mean = (prior.prior_s * np.asarray(prior.mean) + sum_mean) / (prior.prior_s + weight)
    square = (prior.prior_s * np.asarray(prior.square) + sum_square) / (prior.prior_s + weight)
    spread = np.sqrt(np.maximum(square - mean * mean, 0.0).mean(axis=-1)) + _SPREAD_EPS
    return mean, spread


def apply(relative: np.ndarray, mean: np.ndarray, spread: np.ndarray | float) -> np.ndarray:
    """``(relative - mean) / spread`` as float32; ``mean`` per band, ``spread`` one per window."""
    centred = np.asarray(relative, dtype=np.float32) - np.asarray(mean, dtype=np.float32)[..., None, :]
    return centred / np.asarray(spread, dtype=np.float32)[..., None, None]


class SessionNormalizer:
    """Turns a window's log-mel frames into the model's input, adapting to the session.

    For window normalizations this is ``normalize_window``. For ``session_cmvn`` every speech
    window first joins the running estimate (decaying with ``memory_s``) and is then normalized
    with it. ``frozen`` statistics (a whole file's or folder's, from :class:`SpeechMoments`)
    replace the running estimate: ``analyze`` reads a file twice, once to learn its speaker.
    """

    def __init__(self, cfg: FeatureConfig, prior: AdaptationPrior | None, hop_s: float) -> None:
        self.cfg = cfg
        self.adapts = cfg.normalization == "session_cmvn"
        if self.adapts and prior is None:
            raise ValueError("a session_cmvn model needs an adaptation prior in its metadata")
        self.prior = prior
        self.hop_s = hop_s
        self._decay = float(np.exp(-hop_s / prior.memory_s)) if prior is not None else 1.0
        self._frozen: SpeechMoments | None = None
        self._collecting: SpeechMoments | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the session (a new speaker); frozen statistics stay frozen."""
        self._running = SpeechMoments.empty(self.cfg.n_features)
        self.heard_s = 0.0

    def freeze(self, moments: SpeechMoments | None) -> None:
        """Use these statistics for every window from now on instead of the running estimate
        (None: back to the running estimate)."""
        self._frozen = moments
        self.heard_s = moments.weight_s if moments is not None else 0.0

    def collect(self) -> SpeechMoments:
        """From now on only gather speech windows' statistics (:meth:`observe`), for a later
        :meth:`freeze`: the first of ``analyze``'s two passes over a file."""
        self._collecting = SpeechMoments.empty(self.cfg.n_features)
        return self._collecting

    def stop_collecting(self) -> None:
        self._collecting = None

    @property
    def collecting(self) -> bool:
        return self._collecting is not None

    def observe(self, logmel: np.ndarray) -> None:
        """A speech window joins the statistics being collected."""
        assert self._collecting is not None
        self._collecting.add(relative_features(logmel, self.cfg), self.hop_s)

    @property
    def warm_s(self) -> float:
        """Seconds of speech after which the statistics are the session's own (0: no adaptation)."""
        return self.prior.warm_s if self.prior is not None else 0.0

    def normalize(self, logmel: np.ndarray) -> np.ndarray:
        """The model input for one speech window's ``(frames, n_mels)`` log-mel."""
        prior = self.prior
        if not self.adapts or prior is None:
            return normalize_window(logmel, self.cfg)
        relative = relative_features(logmel, self.cfg)
        if self._frozen is None:
            self._running.add(relative, self.hop_s, self._decay)
            self.heard_s += self.hop_s
            stats = self._running.blended(prior)
        else:
            stats = self._frozen.blended(prior)
        return apply(relative, *stats)


@dataclass
class SpeechMoments:
    """Moments summed over a file's (or folder's) speech windows, each weighing ``hop_s``."""

    sum_mean: np.ndarray
    sum_square: np.ndarray
    weight_s: float = 0.0

    @classmethod
    def empty(cls, n_features: int) -> SpeechMoments:
        return cls(np.zeros(n_features), np.zeros(n_features))

    def add(self, relative: np.ndarray, hop_s: float, decay: float = 1.0) -> None:
        """One speech window's :func:`relative_features` join the sums, after what was there
        is scaled by ``decay`` (below 1: the live estimate's forgetting)."""
        mean, square = window_moments(relative)
        self.sum_mean = decay * self.sum_mean + hop_s * mean
        self.sum_square = decay * self.sum_square + hop_s * square
        self.weight_s = decay * self.weight_s + hop_s

    def merge(self, other: SpeechMoments) -> SpeechMoments:
        return SpeechMoments(self.sum_mean + other.sum_mean, self.sum_square + other.sum_square,
                             self.weight_s + other.weight_s)

    def blended(self, prior: AdaptationPrior) -> tuple[np.ndarray, np.ndarray]:
        return blend(prior, self.sum_mean, self.sum_square, self.weight_s)
