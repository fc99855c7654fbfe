"""Whole-file analysis: run each file through the same processor the live app uses and
summarise it. A clip's emotion is the mean of its speech windows' probabilities; a clip with
no speech window says so instead of guessing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.audio_io import load_audio
from ser_live.processor import ProcessorSettings, StreamProcessor


@dataclass
class ClipReport:
    file: str
    label: str | None
    confidence: float | None
    probs: dict[str, float] | None
    speech_ratio: float
    uncertain: bool  # confidence below the model's uncertain_below: the label is a best guess
    windows: int
    duration_s: float

    def to_record(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "uncertain": self.uncertain,
            "probs": None if self.probs is None else {k: round(v, 4) for k, v in self.probs.items()},
            "speech_ratio": round(self.speech_ratio, 3),
            "windows": self.windows,
            "duration_s": round(self.duration_s, 2),
        }


def analyze_file(path: Path, processor: StreamProcessor) -> ClipReport:
    """Raises AudioFileError for unreadable files. The processor must not smooth (smoothing_s=0)."""
    audio = load_audio(path, processor.cfg.sample_rate_hz)
    processor.reset(0.0)
    results = processor.push(audio) + processor.flush()
    speech = [r.probs for r in results if r.probs is not None]
    label = confidence = probs = None
    if speech:
        mean = np.mean([[p[x] for x in processor.labels] for p in speech], axis=0)
        best = int(np.argmax(mean))
        label, confidence = processor.labels[best], float(mean[best])
        probs = {x: float(p) for x, p in zip(processor.labels, mean, strict=True)}
    return ClipReport(
        file=str(path),
        label=label,
        confidence=confidence,
        probs=probs,
        speech_ratio=len(speech) / len(results) if results else 0.0,
        uncertain=confidence is not None
        and confidence < processor.classifier.metadata.calibration.uncertain_below,
        windows=len(results),
        duration_s=len(audio) / processor.cfg.sample_rate_hz,
    )


def clip_settings(settings: ProcessorSettings) -> ProcessorSettings:
    """Per-clip analysis averages windows itself, so smoothing across windows is turned off."""
    return dataclasses.replace(settings, smoothing_s=0.0)
