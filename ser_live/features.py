"""Log-mel features, computed the same way offline (training, ``analyze``) and a hop at a time (live).

Pure numpy on purpose: no devices, no Qt, no numba compilation at start-up. The mel filter
bank reproduces ``librosa.filters.mel`` (Slaney scale and norm); a test holds it to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ser_live.config import FeatureConfig

_EPS = 1e-12


# Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default).
_MEL_HZ_STEP = 200.0 / 3
_MEL_LOG_HZ = 1000.0
_MEL_LOG_MEL = _MEL_LOG_HZ / _MEL_HZ_STEP
_MEL_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mels = hz / _MEL_HZ_STEP
    above = hz >= _MEL_LOG_HZ
    mels[above] = _MEL_LOG_MEL + np.log(hz[above] / _MEL_LOG_HZ) / _MEL_LOGSTEP
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    hz = _MEL_HZ_STEP * mels
    above = mels >= _MEL_LOG_MEL
    hz[above] = _MEL_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels[above] - _MEL_LOG_MEL))
    return hz


@lru_cache(maxsize=8)
def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular Slaney-normalised filters, shape ``(n_mels, n_fft // 2 + 1)``."""
    fft_hz = np.linspace(0, cfg.sample_rate_hz / 2, cfg.n_fft // 2 + 1)
    mel_edges = np.linspace(
        _hz_to_mel(np.array([cfg.fmin_hz]))[0], _hz_to_mel(np.array([cfg.fmax_hz]))[0], cfg.n_mels + 2
    )
    hz_edges = _mel_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    fb = weights.astype(np.float32)
    fb.setflags(write=False)
    return fb


@lru_cache(maxsize=8)
def analysis_window(cfg: FeatureConfig) -> np.ndarray:
    """A periodic Hann window of ``win_length`` centred in ``n_fft`` (librosa's convention)."""
    n = np.arange(cfg.win_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.win_length)
    window = np.zeros(cfg.n_fft, dtype=np.float32)
    start = (cfg.n_fft - cfg.win_length) // 2
    window[start : start + cfg.win_length] = hann
    window.setflags(write=False)
    return window


@dataclass
class FrameFeatures:
    """Per-frame features: what the model sees (``logmel``) and the level the speech gate's floor sees."""

    logmel: np.ndarray  # (frames, n_mels) float32, natural log of mel power
    level_db: np.ndarray  # (frames,) float32, windowed mean-square power in dBFS

    def __len__(self) -> int:
        return len(self.logmel)


def _analyze_frames(frames: np.ndarray, cfg: FeatureConfig) -> FrameFeatures:
    window = analysis_window(cfg)
    windowed = frames * window
    # float32 power (numpy 1.x's FFT is complex128 whatever the input), squared in place
    power = np.abs(np.fft.rfft(windowed, n=cfg.n_fft, axis=1)).astype(np.float32, copy=False)
    np.square(power, out=power)
    logmel = power @ mel_filterbank(cfg).T
    logmel += cfg.log_floor
    np.log(logmel, out=logmel)
    # a frame's energy from its spectrum (Parseval; the bins between DC and Nyquist stand for two
    # each): a sum over power already computed instead of another pass over the samples
    energy = 2.0 * power.sum(axis=1) - power[:, 0] - power[:, -1]
    mean_square = energy / (cfg.n_fft * float(np.sum(window * window)))
    level_db = (10.0 * np.log10(mean_square + _EPS)).astype(np.float32)
    return FrameFeatures(logmel, level_db)


def frame_count(n_samples: int, cfg: FeatureConfig) -> int:
    if n_samples < cfg.n_fft:
        return 0
    return 1 + (n_samples - cfg.n_fft) // cfg.hop_length


def offline_features(audio: np.ndarray, cfg: FeatureConfig) -> FrameFeatures:
    """Features of every complete frame of ``audio`` (float32 mono at ``cfg.sample_rate_hz``)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    n = frame_count(len(audio), cfg)
    if n == 0:
        return FrameFeatures(np.zeros((0, cfg.n_mels), dtype=np.float32), np.zeros((0,), dtype=np.float32))
    # the frames as a read-only strided view, built directly: sliding_window_view and its slicing
    # took ~40 us a hop, a quarter of the FFTs
    frames = np.lib.stride_tricks.as_strided(
        audio, shape=(n, cfg.n_fft), strides=(cfg.hop_length * audio.itemsize, audio.itemsize), writeable=False
    )
    return _analyze_frames(frames, cfg)


def window_starts(n_frames: int, cfg: FeatureConfig) -> range:
    """First frame of each complete window, one every hop, as the live stream produces them."""
    last = n_frames - cfg.frames_per_window
    return range(0, last + 1, cfg.frames_per_hop) if last >= 0 else range(0)


@lru_cache(maxsize=8)
def dct_matrix(cfg: FeatureConfig) -> np.ndarray:
    """Orthonormal DCT-II, ``(n_mels, n_mfcc)``: log-mel frames @ it = MFCCs (``scipy.fft.dct(norm="ortho")``)."""
    n = np.arange(cfg.n_mels)
    k = np.arange(cfg.n_mfcc)
    basis = np.cos(np.pi / cfg.n_mels * (n[:, None] + 0.5) * k[None, :]) * np.sqrt(2.0 / cfg.n_mels)
    basis[:, 0] /= np.sqrt(2.0)
    basis.setflags(write=False)
    return basis


def loud_percentile(values: np.ndarray, q: float = 95.0) -> np.ndarray:
    """The ``q``-th percentile along the last axis, linear between ranks as ``np.percentile``.

    Three times a hop on ~200 values: ``np.percentile``'s general machinery cost more than
    the sort itself (about 0.1 ms a call), this is a sort and two look-ups."""
    ranked = np.sort(values, axis=-1)
    position = q / 100.0 * (ranked.shape[-1] - 1)
    below = int(np.floor(position))
    above = min(below + 1, ranked.shape[-1] - 1)
    low = ranked[..., below]
    return low + (position - below) * (ranked[..., above] - low)


def relative_features(logmel: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log power above a floor ``relative_floor_db`` below the window's loud frames (MFCC: its DCT).

    The floor follows the window's loud level (95th percentile of frame power), so input gain
    changes nothing here: a quiet microphone looks like a loud one. Works on ``(frames, n_mels)``
    or a batch ``(..., frames, n_mels)``.
    """
    # float32 throughout: numpy's float64 exp and log took 6x as long on a window (0.1 ms each),
    # and the result moves by ~1e-6, a 60,000th of one int8 input step
    power = np.exp(logmel, dtype=np.float32)  # mel power (+ log_floor > 0, so the log below is finite)
    loud = loud_percentile(power.sum(axis=-1))[..., None, None]
    floor = loud * np.float32(10.0 ** (-cfg.relative_floor_db / 10.0) / logmel.shape[-1])
    relative = np.log(power / floor + np.float32(1.0))  # log(power + floor) - log(floor): the hot path, one log
    if cfg.front_end == "mfcc":
        relative = relative @ dct_matrix(cfg)
    return relative


def normalize_window(logmel: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Remove each band's mean over the window and scale by the window's spread.

    Subtracting the per-band mean cancels a fixed channel (microphone, room colouring) and
    input gain; dividing by one overall spread keeps the relative loudness of bands. Works on
    ``(frames, n_mels)`` or a batch ``(..., frames, n_mels)``.

    A fixed ``log_floor`` is crossed by quiet input, so gain then changes the features after
    all; ``gain_cmvn`` works on :func:`relative_features`, which makes the whole chain
    gain-invariant. ``session_cmvn`` uses the session's band means instead of the window's
    (``ser_live.adaptation``).
    """
    if cfg.normalization == "session_cmvn":
        raise ValueError("session_cmvn windows need the session's statistics: use adaptation.SessionNormalizer")
    if cfg.normalization == "gain_cmvn":
        logmel = relative_features(logmel, cfg)
    elif cfg.front_end == "mfcc":
        logmel = logmel @ dct_matrix(cfg)
    centred = logmel - logmel.mean(axis=-2, keepdims=True)
    spread = np.sqrt(np.mean(centred * centred, axis=(-2, -1), keepdims=True)) + 1e-3
    return (centred / spread).astype(np.float32)


class StreamingFeatures:
    """Computes only the frames that new samples complete and keeps the last window of them.

    Produces the same frames as :func:`offline_features` on the concatenated stream, whatever
    the chunk sizes pushed.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        capacity = cfg.frames_per_window
        self._logmel = np.zeros((capacity, cfg.n_mels), dtype=np.float32)
        self._level_db = np.zeros(capacity, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_total = 0

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_total = 0

    def push(self, samples: np.ndarray) -> int:
        """Add samples; returns how many new frames they completed."""
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        new = offline_features(self._pending, self.cfg)
        count = len(new)
        if count == 0:
            return 0
        self._pending = self._pending[count * self.cfg.hop_length :]
        keep = min(count, len(self._logmel))
        for store, values in ((self._logmel, new.logmel), (self._level_db, new.level_db)):
            store[: len(store) - keep] = store[keep:]
            store[len(store) - keep :] = values[count - keep :]
        self.frames_total += count
        return count

    def window(self) -> FrameFeatures:
        """A copy of the newest ``frames_per_window`` frames (valid once that many were pushed)."""
        return FrameFeatures(self._logmel.copy(), self._level_db.copy())
