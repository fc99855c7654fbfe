"""Scoring a model on audio as a user's microphone and room deliver it: quieter, noisier, or
through a lossy codec.

Studio clips flatter a model; a laptop in a living room gives it quieter speech with a fan or a
street behind it. ``evaluate`` and ``cv --rescore`` alter the held-out audio this way before the
app's own windowing, gate and features see it, so the figures say what such a user would get.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_live.config import FeatureConfig
from ser_live.gate import GateConfig
from training.augment import CODECS, add_noise, codec_round_trip
from training.data import EvalWindows, eval_windows


@dataclass(frozen=True)
class InputCondition:
    """``gain_db`` scales the audio (a quieter or louder, clipping, microphone) and moves the
    speech gate by as much, as a user sets it, so what is left is the model's own dependence on
    level. ``snr_db`` first adds coloured noise (white to brown, random per clip, seeded) at this
    signal-to-noise ratio over the whole clip; the gate stays where it is, as it would in a
    noisy room. ``codec`` (a name in ``augment.CODECS``) last encodes and decodes the audio at the
    harsh end of what training renders, about 14 kbit/s: a voice message or a poor web call."""

    gain_db: float = 0.0
    snr_db: float | None = None
    codec: str | None = None
    seed: int = 0

    def to_dict(self) -> dict:
        """What a cv.json records (the seed aside: it only varies the noise)."""
        return {"gain_db": self.gain_db, "snr_db": self.snr_db, "codec": self.codec}

    @property
    def plain(self) -> bool:
        return not self.gain_db and self.snr_db is None and self.codec is None

    @property
    def suffix(self) -> str:
        """For file names: '' when plain, else e.g. '-snr10dB-gain-30dB-opus'."""
        noise = "" if self.snr_db is None else f"-snr{self.snr_db:g}dB"
        codec = "" if self.codec is None else f"-{self.codec}"
        return noise + (f"-gain{self.gain_db:g}dB" if self.gain_db else "") + codec

    def describe(self) -> str:
        """For titles and logs: '' when plain, else e.g. ', noise at 10 dB SNR, input -30 dB, through opus'."""
        noise = "" if self.snr_db is None else f", noise at {self.snr_db:g} dB SNR"
        codec = "" if self.codec is None else f", through {self.codec} at about 14 kbit/s"
        return noise + (f", input {self.gain_db:+g} dB" if self.gain_db else "") + codec

    def windows(self, audio: list[np.ndarray], cfg: FeatureConfig, log=print) -> EvalWindows:
        """The app's evaluation windows of ``audio`` under this condition."""
        if self.plain:
            return eval_windows(audio, cfg)
        if self.snr_db is not None:
            snr = (self.snr_db, self.snr_db)
            audio = [add_noise(a, np.random.default_rng([self.seed, i]), snr) for i, a in enumerate(audio)]
        scale = np.float32(10 ** (self.gain_db / 20))
        audio = [np.clip(a * scale, -1.0, 1.0) for a in audio]
        if self.codec is not None:
            level = CODECS[self.codec][2][1]
            audio = [codec_round_trip(a, cfg.sample_rate_hz, self.codec, level) for a in audio]
        gate = GateConfig(min_level_db=GateConfig.min_level_db + self.gain_db)
        log(f"held-out audio{self.describe()}; speech gate at {gate.min_level_db:g} dBFS")
        return eval_windows(audio, cfg, gate)


AS_RECORDED = InputCondition()
