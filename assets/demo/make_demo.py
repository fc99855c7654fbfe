"""Rebuild ser-live-demo.flac from RAVDESS (see LICENSE.md): four clips of actor 03, each trimmed
to its speech plus 0.15 s, with 1.8 s of silence between them (long enough for one silent window).

    python assets/demo/make_demo.py /path/to/ravdess-speech-16k
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile

RATE_HZ = 16000
CLIPS = (  # neutral, happy (strong), angry (strong), sad (strong); statement 1, repetition 1
    "Actor_03/03-01-01-01-01-01-03.flac",
    "Actor_03/03-01-03-02-01-01-03.flac",
    "Actor_03/03-01-05-02-01-01-03.flac",
    "Actor_03/03-01-04-02-01-01-03.flac",
)
LEAD_S, GAP_S, TAIL_S, MARGIN_S = 0.5, 1.8, 1.0, 0.15
FRAME = 320
TRIM_BELOW_PEAK_DB = 40.0


def trim(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-18)
    loud = np.flatnonzero(level_db > level_db.max() - TRIM_BELOW_PEAK_DB)
    margin = round(MARGIN_S * RATE_HZ)
    return audio[max(0, loud[0] * FRAME - margin) : (loud[-1] + 1) * FRAME + margin]


def main(root: Path, out: Path) -> None:
    parts = [np.zeros(round(LEAD_S * RATE_HZ), np.float32)]
    for i, name in enumerate(CLIPS):
        audio, rate = soundfile.read(root / name, dtype="float32")
        assert rate == RATE_HZ, f"{name}: expected {RATE_HZ} Hz"
        gap_s = TAIL_S if i == len(CLIPS) - 1 else GAP_S
        parts += [trim(audio), np.zeros(round(gap_s * RATE_HZ), np.float32)]
    soundfile.write(out, np.concatenate(parts), RATE_HZ, subtype="PCM_16")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("ser-live-demo.flac"))
