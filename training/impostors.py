"""Synthetic sounds that are not speech but fooled hand-made speech gates: music-like tones
that move like syllables, noise of three colours, mains hum, clicks. Seeded and deterministic,
so the speech check and the tests hear exactly the same impostors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RATE_HZ = 16000
SECONDS = 6.0


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * RATE_HZ)) / RATE_HZ


def _normalize(x: np.ndarray, peak: float = 0.3) -> np.ndarray:
    return (x * (peak / (np.abs(x).max() + 1e-12))).astype(np.float32)


def plucked_melody(rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong-like plucks (decaying harmonics) on a pentatonic tune, 4 notes a second."""
    t_note = _t(0.25)
    notes = []
    for _ in range(round(SECONDS * 4)):
        f0 = 220.0 * 2 ** (rng.choice([0, 2, 4, 7, 9, 12]) / 12)
        tone = sum(np.sin(2 * np.pi * f0 * k * t_note) / k * np.exp(-t_note * (6 + 3 * k)) for k in range(1, 8))
        notes.append(tone)
    return _normalize(np.concatenate(notes))


def chord_tremolo(rng: np.random.Generator) -> np.ndarray:
    """A major chord whose loudness pulses at a syllable-like 5 Hz."""
    t = _t(SECONDS)
    root = rng.uniform(180, 260)
    chord = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5, 2.0))
    return _normalize(chord * (0.55 + 0.45 * np.sin(2 * np.pi * 5.0 * t)))


def sweep_tremolo(rng: np.random.Generator) -> np.ndarray:
    """A sine gliding 150 -> 600 Hz and back, pulsing at 4 Hz, like an intonation contour."""
    t = _t(SECONDS)
    freq = 375 + 225 * np.sin(2 * np.pi * t / SECONDS + rng.uniform(0, np.pi))
    phase = 2 * np.pi * np.cumsum(freq) / RATE_HZ
    return _normalize(np.sin(phase) * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)))


def _noise(slope: float) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        n = round(SECONDS * RATE_HZ)
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.arange(len(spec)), 1.0)
        return _normalize(np.fft.irfft(spec / f ** (slope / 2), n=n), peak=0.5)

    return make


def _hum(mains_hz: float) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        t = _t(SECONDS)
        hum = sum(np.sin(2 * np.pi * mains_hz * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
        return _normalize(hum)

    return make


def clicks(rng: np.random.Generator) -> np.ndarray:
    """Sharp clicks at irregular syllable-like intervals (keyboard, clock, a mouse)."""
    out = np.zeros(round(SECONDS * RATE_HZ))
    at = 0.0
    while at < SECONDS - 0.01:
        start = round(at * RATE_HZ)
        burst = rng.standard_normal(80) * np.exp(-np.arange(80) / 12)
        out[start : start + 80] += burst
        at += rng.uniform(0.08, 0.4)
    return _normalize(out, peak=0.6)


IMPOSTORS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "plucked melody": plucked_melody,
    "chord with tremolo": chord_tremolo,
    "sine sweep with tremolo": sweep_tremolo,
    "white noise": _noise(0.0),
    "pink noise": _noise(1.0),
    "brown noise": _noise(2.0),
    "50 Hz hum with harmonics": _hum(50.0),
    "60 Hz hum with harmonics": _hum(60.0),
    "clicks": clicks,
}


def impostor(name: str, seed: int) -> np.ndarray:
    """Float32 mono at 16 kHz, ``SECONDS`` long."""
    return IMPOSTORS[name](np.random.default_rng([seed, len(name)]))
