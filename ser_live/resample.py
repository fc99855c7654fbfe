"""Stateful resampling from a device's rate to the model's, block by block without clicks."""

from __future__ import annotations

from typing import Any

import numpy as np


class StreamResampler:
    """Wraps ``soxr.ResampleStream``, which carries its filter state across blocks."""

    def __init__(self, from_hz: int, to_hz: int) -> None:
        self.from_hz = from_hz
        self.to_hz = to_hz
        self._stream: Any = None
        self._needed = from_hz != to_hz
        if self._needed:
            import soxr

            self._stream = soxr.ResampleStream(from_hz, to_hz, 1, dtype="float32", quality="HQ")

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if not self._needed:
            return mono
        if self._stream is None:
            raise RuntimeError("resampler used after close()")
        return self._stream.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)

    def close(self) -> None:
        """Free soxr's native state now. Left to interpreter exit, nanobind reports every
        resampler still alive as a leak on stderr (a replay ended by Ctrl-C or SIGTERM)."""
        self._stream = None
