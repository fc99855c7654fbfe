"""The one feature module and the DC filter in front of it: equal to librosa, and streaming equal
to offline for any chunking."""

from __future__ import annotations

from dataclasses import replace

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_live.config import FeatureConfig
from ser_live.features import (
    StreamingFeatures,
    loud_percentile,
    mel_filterbank,
    normalize_window,
    offline_features,
    window_starts,
)
from ser_live.highpass import HighPass, highpass

CFG = FeatureConfig()


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * CFG.sample_rate_hz)) / CFG.sample_rate_hz
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / CFG.sample_rate_hz
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    return (0.2 * voice * envelope + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def test_mel_filterbank_matches_librosa() -> None:
    expected = librosa.filters.mel(
        sr=CFG.sample_rate_hz, n_fft=CFG.n_fft, n_mels=CFG.n_mels, fmin=CFG.fmin_hz, fmax=CFG.fmax_hz
    )
    np.testing.assert_allclose(mel_filterbank(CFG), expected, atol=1e-7)


def test_logmel_matches_librosa_melspectrogram() -> None:
    audio = speechlike(1.0)
    ours = offline_features(audio, CFG).logmel
    mel = librosa.feature.melspectrogram(
        y=audio, sr=CFG.sample_rate_hz, n_fft=CFG.n_fft, win_length=CFG.win_length, hop_length=CFG.hop_length,
        n_mels=CFG.n_mels, fmin=CFG.fmin_hz, fmax=CFG.fmax_hz, center=False, power=2.0,
    )
    np.testing.assert_allclose(ours, np.log(mel.T + CFG.log_floor), atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=40))
def test_streaming_features_equal_offline(chunks: list[int]) -> None:
    audio = speechlike(3.0, seed=len(chunks))
    offline = offline_features(audio, CFG)
    stream = StreamingFeatures(CFG)
    edges = np.cumsum(chunks)
    for piece in np.split(audio, edges[edges < len(audio)]):
        stream.push(piece)
    assert stream.frames_total == len(offline)
    window = stream.window()
    tail = slice(len(offline) - CFG.frames_per_window, len(offline))
    np.testing.assert_allclose(window.logmel, offline.logmel[tail], atol=1e-5)
    np.testing.assert_allclose(window.level_db, offline.level_db[tail], atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=40))
def test_streaming_highpass_equals_offline_exactly(chunks: list[int]) -> None:
    audio = speechlike(3.0, seed=len(chunks)) + np.float32(0.05)
    offline = highpass(audio, CFG.sample_rate_hz, CFG.hop_length, CFG.highpass_hz)
    stream = HighPass(CFG.sample_rate_hz, CFG.hop_length, CFG.highpass_hz)
    edges = np.cumsum(chunks)
    pieces = [stream.push(piece) for piece in np.split(audio, edges[edges < len(audio)])]
    got = np.concatenate([*pieces, stream.flush()])
    np.testing.assert_array_equal(got, offline)


def test_highpass_removes_dc_and_rumble_and_keeps_the_voice() -> None:
    n = 3 * CFG.sample_rate_hz
    t = np.arange(n) / CFG.sample_rate_hz
    settled = slice(CFG.sample_rate_hz, None)  # after the filter's first second

    def gain_db(x: np.ndarray) -> float:
        y = highpass(x.astype(np.float32), CFG.sample_rate_hz, CFG.hop_length, CFG.highpass_hz)
        return float(10 * np.log10((np.mean(y[settled] ** 2) + 1e-20) / np.mean(x[settled] ** 2)))

    assert gain_db(np.full(n, 0.05)) < -60  # a DC offset is gone
    assert gain_db(np.sin(2 * np.pi * 15 * t)) < -14  # rumble well down
    assert -1.5 < gain_db(np.sin(2 * np.pi * 100 * t)) < 0  # a low male voice's pitch passes
    assert -0.2 < gain_db(np.sin(2 * np.pi * 1000 * t)) <= 0.01


def test_window_count_follows_hop() -> None:
    frames = len(offline_features(speechlike(4.0), CFG))
    # windows end at 2.0, 2.5, ..., 4.0 s
    assert len(window_starts(frames, CFG)) == 5


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="hop_s"):
        FeatureConfig(hop_s=0.123)
    with pytest.raises(ValueError, match="log_floor"):
        FeatureConfig(log_floor=0.0)
    with pytest.raises(ValueError, match="highpass_hz"):
        FeatureConfig(highpass_hz=0.0)
    with pytest.raises(ValueError, match="unknown feature config keys"):
        FeatureConfig.from_dict({**CFG.to_dict(), "bogus": 1})


@pytest.mark.parametrize("gain_db", [-12.0, -30.0, -45.0])
def test_gain_cmvn_windows_do_not_depend_on_input_gain(gain_db: float) -> None:
    """A quiet microphone gives the model the same window as a loud one (the fixed floor of
    window_cmvn does not: there, quiet input changes the features)."""
    gain = np.float32(10 ** (gain_db / 20))
    audio = speechlike(2.0)
    fixed_floor = replace(CFG, log_floor=1e-6, normalization="window_cmvn")
    for cfg, invariant in ((replace(CFG, normalization="gain_cmvn"), True), (fixed_floor, False)):
        loud = normalize_window(offline_features(audio, cfg).logmel, cfg)
        quiet = normalize_window(offline_features(audio * gain, cfg).logmel, cfg)
        assert np.allclose(loud, quiet, atol=1e-3) == invariant, cfg.normalization


def test_mfcc_front_end_is_the_dct_of_the_floored_logmel_and_stays_gain_invariant() -> None:
    """MFCCs are librosa's (orthonormal DCT-II of the same log-mel), then the same window
    normalization; a quieter input still gives the model the same window."""
    import scipy.fft

    mfcc = replace(CFG, front_end="mfcc", n_mfcc=30)
    logmel = offline_features(speechlike(2.0), mfcc).logmel
    window = normalize_window(logmel, mfcc)
    assert window.shape == (CFG.frames_per_window, 30) and mfcc.n_features == 30
    power = np.exp(logmel.astype(np.float64))
    floor = np.percentile(power.sum(axis=-1), 95) * 10 ** (-CFG.relative_floor_db / 10) / CFG.n_mels
    ref = scipy.fft.dct(np.log(power + floor), type=2, norm="ortho", axis=-1)[:, :30]
    ref -= ref.mean(axis=0)
    np.testing.assert_allclose(window, ref / (np.sqrt(np.mean(ref**2)) + 1e-3), atol=1e-4)
    quiet = normalize_window(offline_features(speechlike(2.0) * np.float32(10 ** (-30 / 20)), mfcc).logmel, mfcc)
    np.testing.assert_allclose(window, quiet, atol=1e-3)
    with pytest.raises(ValueError, match="front_end"):
        replace(CFG, front_end="plp")
    with pytest.raises(ValueError, match="n_mfcc"):
        replace(CFG, front_end="mfcc", n_mfcc=65)


@pytest.mark.parametrize("shape", [(197,), (3, 197), (1,), (2, 5)])
def test_loud_percentile_equals_numpy(shape: tuple[int, ...]) -> None:
    values = np.random.default_rng(len(shape)).standard_normal(shape) * 30
    np.testing.assert_allclose(loud_percentile(values), np.percentile(values, 95, axis=-1), rtol=1e-12, atol=1e-12)
