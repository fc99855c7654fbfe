"""``python -m training speech-check``: does only speech get an emotion?

Runs the app's own :class:`~ser_live.processor.StreamProcessor` (DC filter, VAD, gate, model)
over real and synthetic input and prints what a user would see:

- non-speech (ESC-10 classes, one folder each; synthetic impostors): the share of clips that get
  an emotion, i.e. have at least one speech window;
- speech corpora: the share of clips with at least one speech window, and per speaker the share
  of windows marked speech when the speaker's clips play back to back with the pauses between
  them cut (leading and trailing audio more than ``TRIM_DB`` below the clip's loudest 20 ms,
  measured after the app's DC/rumble filter: SAVEE's recordings sit on a DC offset of about 0.04
  that reads as -28 dBFS of "sound" in their pauses).

Speakers are told apart by file layout: RAVDESS ``Actor_NN`` folders, else the file name's
prefix before ``_`` (TESS ``OAF``/``YAF``, SAVEE ``DC``/``JE``/``JK``/``KL``).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser_live.analyze import clip_settings
from ser_live.audio_io import load_audio
from ser_live.config import FeatureConfig
from ser_live.errors import AudioFileError
from ser_live.highpass import highpass
from ser_live.model import EmotionClassifier
from ser_live.processor import ProcessorSettings, StreamProcessor, WindowResult
from training.impostors import IMPOSTORS, impostor

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TRIM_DB = 30.0
TRIM_FRAME_S = 0.02
IMPOSTOR_SEEDS = 10


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def speaker_of(path: Path) -> str:
    if path.parent.name.startswith("Actor_"):
        return path.parent.name
    return path.stem.split("_")[0]


def trim(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Cut leading and trailing audio more than TRIM_DB below the loudest 20 ms of the clip, as
    heard through the app's DC/rumble filter (a DC offset is not sound)."""
    n = round(TRIM_FRAME_S * cfg.sample_rate_hz)
    frames = len(audio) // n
    if frames == 0:
        return audio
    filtered = highpass(audio, cfg.sample_rate_hz, cfg.hop_length, cfg.highpass_hz)
    power = np.mean(filtered[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(power / power.max()) > -TRIM_DB)
    return audio[loud[0] * n : (loud[-1] + 1) * n]


@dataclass
class Tally:
    clips: int = 0
    labelled: int = 0  # clips with at least one speech window
    windows: int = 0
    speech_windows: int = 0

    def add(self, results: list[WindowResult]) -> None:
        self.clips += 1
        self.labelled += any(r.speech for r in results)
        self.windows += len(results)
        self.speech_windows += sum(r.speech for r in results)

    def record(self) -> dict[str, float | int]:
        return {
            "clips": self.clips,
            "labelled_clips": self.labelled,
            "labelled_share": round(self.labelled / self.clips, 4) if self.clips else 0.0,
            "speech_window_share": round(self.speech_windows / self.windows, 4) if self.windows else 0.0,
        }


@dataclass
class SpeechCheck:
    processor: StreamProcessor
    report: dict[str, dict] = field(default_factory=lambda: defaultdict(dict))

    def run(self, audio: np.ndarray) -> list[WindowResult]:
        self.processor.reset(0.0)
        return self.processor.push(audio) + self.processor.flush()

    def _load(self, path: Path) -> np.ndarray | None:
        try:
            return load_audio(path, self.processor.cfg.sample_rate_hz)
        except AudioFileError as exc:
            print(f"warning: skipped: {exc}", file=sys.stderr)
            return None

    def non_speech_folder(self, folder: Path) -> None:
        """Each sub-folder is one class of sound that is not speech (ESC-10's layout)."""
        for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
            tally = Tally()
            for path in _audio_files(cls):
                audio = self._load(path)
                if audio is not None:
                    tally.add(self.run(audio))
            self.report[f"non-speech: {folder.name}"][cls.name] = tally.record()

    def impostors(self) -> None:
        for name in IMPOSTORS:
            tally = Tally()
            for seed in range(IMPOSTOR_SEEDS):
                tally.add(self.run(impostor(name, seed)))
            self.report["non-speech: synthetic"][name] = tally.record()

    def speech_folder(self, folder: Path) -> None:
        by_speaker: dict[str, list[np.ndarray]] = defaultdict(list)
        clips = Tally()
        missed: list[str] = []
        for path in _audio_files(folder):
            audio = self._load(path)
            if audio is None:
                continue
            results = self.run(audio)
            clips.add(results)
            if not any(r.speech for r in results):
                missed.append(path.name)
            by_speaker[speaker_of(path)].append(trim(audio, self.processor.cfg))
        section = self.report[f"speech: {folder.name}"]
        section["clips"] = {**clips.record(), "clips_without_speech": missed}
        for speaker, parts in sorted(by_speaker.items()):
            continuous = Tally()
            continuous.add(self.run(np.concatenate(parts)))
            section[f"continuous {speaker}"] = continuous.record()


def print_report(report: dict[str, dict]) -> None:
    for section, rows in report.items():
        print(f"\n## {section}")
        print("| input | clips | clips with an emotion | windows marked speech |")
        print("|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {r['clips']} | {r['labelled_clips']} ({100 * r['labelled_share']:.1f}%) "
                  f"| {100 * r['speech_window_share']:.1f}% |")


def speech_check(non_speech: list[Path], speech: list[Path], out: Path | None,
                 model: Path | None = None, synthetic: bool = True) -> dict[str, dict]:
    processor = StreamProcessor(EmotionClassifier(model), clip_settings(ProcessorSettings()))
    check = SpeechCheck(processor)
    for folder in non_speech:
        check.non_speech_folder(folder)
    if synthetic:
        check.impostors()
    for folder in speech:
        check.speech_folder(folder)
    report = dict(check.report)
    print_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report
