"""Device-rate to model-rate resampling, block by block."""

from __future__ import annotations

import numpy as np
import pytest

from ser_live.resample import StreamResampler
from tests.conftest import tone


@pytest.mark.parametrize("rate_hz", [8000, 22050, 32000, 44100, 48000, 96000])
def test_stream_resampling_keeps_pitch_and_has_no_block_edges(rate_hz: int) -> None:
    signal = tone(440.0, 2.0, rate_hz)
    resampler = StreamResampler(rate_hz, 16000)
    blocks = [resampler.process(b) for b in np.array_split(signal, 97)]
    out = np.concatenate(blocks + [resampler.process(np.zeros(0, np.float32), last=True)])
    assert abs(len(out) - 32000) <= 2
    spectrum = np.abs(np.fft.rfft(out[4000:20000] * np.hanning(16000)))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440.0) <= 1.0
    # no clicks at block edges: the output is as smooth as a clean 440 Hz tone
    steady = out[1000:-1000]
    assert np.max(np.abs(np.diff(steady))) < 0.3 * 2 * np.pi * 440 / 16000 * 1.05


def test_same_rate_passes_through() -> None:
    block = tone(100.0, 0.1, 16000)
    assert StreamResampler(16000, 16000).process(block) is block
