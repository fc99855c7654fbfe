"""Smoothing of probabilities over time, so the display does not flicker from hop to hop."""

from __future__ import annotations

import math

import numpy as np


class ProbabilitySmoother:
    """Exponential moving average with a time constant in seconds (0 turns smoothing off).

    Reset between utterances: a silent window means at least a window of no speech, and the
    next utterance should not inherit the last one's emotion.
    """

    def __init__(self, time_constant_s: float, hop_s: float) -> None:
        if time_constant_s < 0:
            raise ValueError("smoothing time constant must be >= 0")
        self.keep = math.exp(-hop_s / time_constant_s) if time_constant_s > 0 else 0.0
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def update(self, probs: np.ndarray) -> np.ndarray:
        if self._state is None:
            self._state = probs.astype(np.float32).copy()
        else:
            self._state = self.keep * self._state + (1.0 - self.keep) * probs
        return self._state.copy()
