"""The waveform's picture: the lowest and the highest sample of each column of audio, kept up to
date with only the samples that came since the last redraw.

A column is a fixed run of samples counted from the start of the stream, so once full it never
changes: a redraw takes in its ~30 ms of new audio (a few columns) instead of going over the
whole 5 s again (80,000 samples copied and scanned twice, 0.2-0.6 ms of every redraw).
"""

from __future__ import annotations

import numpy as np


class Envelope:
    """Min and max of the newest ``columns`` full columns of ``per_column`` samples, oldest
    first; zeros before any audio, like the ring the audio comes from."""

    def __init__(self, columns: int, per_column: int) -> None:
        self.per_column = per_column
        self.lows = np.zeros(columns, dtype=np.float32)
        self.highs = np.zeros(columns, dtype=np.float32)
        self._partial = np.zeros(per_column, dtype=np.float32)  # the column being filled
        self._partial_count = 0

    def clear(self) -> None:
        self.lows.fill(0.0)
        self.highs.fill(0.0)
        self._partial_count = 0

    def add(self, audio: np.ndarray) -> None:
        """Take in the samples that follow those taken so far, oldest first."""
        if self._partial_count:
            audio = np.concatenate([self._partial[: self._partial_count], audio])
        full = len(audio) // self.per_column
        new = min(full, len(self.lows))
        if new:
            columns = audio[(full - new) * self.per_column : full * self.per_column].reshape(new, self.per_column)
            self.lows[:-new] = self.lows[new:]
            self.highs[:-new] = self.highs[new:]
            np.min(columns, axis=1, out=self.lows[-new:])
            np.max(columns, axis=1, out=self.highs[-new:])
        rest = audio[full * self.per_column :]
        self._partial[: len(rest)] = rest
        self._partial_count = len(rest)
