"""Audio-level augmentation for a real microphone in a real room.

Everything works on float32 mono audio at the feature rate; the result then goes through
``ser_live.features.offline_features``, the same code the live app runs.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from training import TrainingError


def gain(audio: np.ndarray, rng: np.random.Generator, low_db: float = -24.0, high_db: float = 6.0) -> np.ndarray:
    out = audio * np.float32(10 ** (rng.uniform(low_db, high_db) / 20))
    return np.clip(out, -1.0, 1.0)  # a hot input clips like a real ADC


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown-ish noise (random spectral slope), unit RMS."""
    slope = rng.choice([0.0, 0.5, 1.0, 1.5])
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spec / f ** (slope / 2), n=n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (5.0, 30.0)) -> np.ndarray:
    power = float(np.mean(audio**2)) + 1e-10
    snr = rng.uniform(*snr_db)
    noise = coloured_noise(len(audio), rng) * np.float32(np.sqrt(power / 10 ** (snr / 10)))
    return audio + noise


def room_impulse(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: direct path plus exponentially decaying noise (RT60 0.15-0.8 s)."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(sr * min(rt60 * 1.2, 1.0))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    pre_delay = int(sr * rng.uniform(0.002, 0.02))
    tail[:pre_delay] = 0.0
    # walls absorb highs: low-pass the tail a little
    b, a = signal.butter(1, rng.uniform(2500, 7000) / (sr / 2))
    tail = signal.lfilter(b, a, tail)
    direct_to_reverb = 10 ** (rng.uniform(-3, 12) / 20)
    tail *= 1.0 / (np.sqrt(np.sum(tail**2)) + 1e-12)
    rir = tail
    rir[0] += direct_to_reverb
    return (rir / np.max(np.abs(rir))).astype(np.float32)


def reverb(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    wet = signal.fftconvolve(audio, room_impulse(sr, rng))[: len(audio)]
    return (wet * (np.sqrt(np.mean(audio**2)) / (np.sqrt(np.mean(wet**2)) + 1e-12))).astype(np.float32)


def band_limit(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A cheap microphone or a phone line: through a lower rate and back, plus a high-pass."""
    if rng.random() < 0.5:
        low_rate = int(rng.choice([8000, 11025, 12000]))
        audio = soxr.resample(soxr.resample(audio, sr, low_rate), low_rate, sr)[: len(audio)]
    else:
        b, a = signal.butter(4, rng.uniform(3400, 7000) / (sr / 2))
        audio = signal.lfilter(b, a, audio)
    hp = rng.uniform(60, 300)
    b, a = signal.butter(2, hp / (sr / 2), btype="high")
    return signal.lfilter(b, a, audio).astype(np.float32)


def speed(audio: np.ndarray, sr: int, rng: np.random.Generator, spread: float = 0.12) -> np.ndarray:
    """Pitch and tempo together (a different vocal tract / speaking rate), by resampling."""
    factor = rng.uniform(1 - spread, 1 + spread)
    return soxr.resample(audio, sr, int(round(sr / factor))).astype(np.float32)


# name: (libsndfile format, subtype, the compression levels a rendering draws from). At 16 kHz mono
# MP3 0.3-0.95 is about 36-13 kbit/s and Opus 0.8-0.95 about 59-14 kbit/s (median over speech clips,
# container included): a podcast to a voice message. The harsh end (the upper level) is what
# ``InputCondition(codec=...)`` scores on.
CODECS = {
    "mp3": ("MP3", "MPEG_LAYER_III", (0.3, 0.95)),
    "opus": ("OGG", "OPUS", (0.8, 0.95)),
}


def codec_round_trip(audio: np.ndarray, sr: int, name: str, level: float) -> np.ndarray:
    """``audio`` encoded by a lossy codec and decoded again, in memory, same length.

    libsndfile (bundled in the soundfile wheel, a Pi's too) encodes both, and the decoded samples
    are the same on every run, so a rendering stays reproducible from its seed."""
    fmt, subtype, _ = CODECS[name]
    buffer = io.BytesIO()
    try:
        sf.write(buffer, np.clip(audio, -1.0, 1.0), sr, format=fmt, subtype=subtype, compression_level=level)
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float32")
    except (sf.LibsndfileError, TypeError, ValueError) as exc:
        raise TrainingError(f"the {name} codec cannot encode {sr} Hz audio with this libsndfile: {exc}") from None
    out = np.zeros(len(audio), dtype=np.float32)
    out[: min(len(audio), len(decoded))] = decoded[: len(audio)]
    return out


def lossy_codec(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A recording as a phone app or a web call delivers it: MP3 or Opus at a random bit rate."""
    name = str(rng.choice(sorted(CODECS)))
    return codec_round_trip(audio, sr, name, float(rng.uniform(*CODECS[name][2])))


def random_chain(audio: np.ndarray, sr: int, rng: np.random.Generator, codec_share: float = 0.0) -> np.ndarray:
    """One random microphone-and-room rendering of a clean clip; ``codec_share`` of them then go
    through a lossy codec, last, as a recording app does (0 draws nothing: the same renderings as
    before the codecs existed)."""
    out = np.asarray(audio, dtype=np.float32)
    if rng.random() < 0.6:
        out = speed(out, sr, rng)
    if rng.random() < 0.5:
        out = reverb(out, sr, rng)
    if rng.random() < 0.35:
        out = band_limit(out, sr, rng)
    if rng.random() < 0.7:
        out = add_noise(out, rng)
    out = gain(out, rng)
    if codec_share and rng.random() < codec_share:
        out = lossy_codec(out, sr, rng)
    return out.astype(np.float32)


def spec_augment(batch: np.ndarray, rng: np.random.Generator, max_t: int = 24, max_f: int = 8) -> np.ndarray:
    """Zero one random time stripe and one frequency stripe per normalized window (in place)."""
    n, frames, mels = batch.shape[:3]
    for i in range(n):
        t = rng.integers(0, max_t + 1)
        t0 = rng.integers(0, frames - t + 1)
        batch[i, t0 : t0 + t] = 0.0
        f = rng.integers(0, max_f + 1)
        f0 = rng.integers(0, mels - f + 1)
        batch[i, :, f0 : f0 + f] = 0.0
    return batch
