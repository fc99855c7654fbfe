"""Finding labelled clips in emotion corpora and mapping their labels onto ``EMOTIONS``.

Recognized layouts (by file name, so the official downloads work as they are):

- RAVDESS ``03-01-EE-II-SS-RR-AA.wav`` (and our ``.flac`` copy; song ``03-02-...`` too)
- TESS ``OAF_back_angry.wav`` / ``YAF_..._ps.wav`` (and the one ``OA_bite_neutral.wav`` of the download)
- CREMA-D ``1001_DFA_ANG_XX.wav``
- SAVEE ``DC_a01.wav`` or ``DC/a01.wav`` (speaker folder)
- EmoDB ``03a01Fa.wav``
- a generic ``manifest.csv`` with columns ``path,label,speaker`` (paths relative to it)
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ser_live.audio_io import AUDIO_EXTENSIONS
from ser_live.config import EMOTIONS
from training import TrainingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str  # one of EMOTIONS
    speaker: str  # "<corpus>:<id>", unique across corpora
    corpus: str


# Every spelling a supported corpus (or a sensible manifest) uses for our eight emotions.
LABEL_SYNONYMS: dict[str, str] = {
    **{e: e for e in EMOTIONS},
    "neu": "neutral", "n": "neutral",
    "cal": "calm",
    "hap": "happy", "happiness": "happy", "joy": "happy", "h": "happy",
    "sadness": "sad", "sa": "sad",
    "ang": "angry", "anger": "angry", "a": "angry",
    "fea": "fearful", "fear": "fearful", "f": "fearful",
    "dis": "disgust", "disgusted": "disgust", "d": "disgust",
    "sur": "surprised", "surprise": "surprised", "su": "surprised", "ps": "surprised",
    "pleasant_surprise": "surprised", "pleasant surprise": "surprised",
}

RAVDESS_EMOTIONS = {f"{i + 1:02d}": e for i, e in enumerate(EMOTIONS)}
EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
                  "T": "sadness", "N": "neutral"}

_RAVDESS = re.compile(r"^03-0[12]-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_TESS = re.compile(r"^([OY]AF?)_[A-Za-z]+_([A-Za-z]+)$", re.IGNORECASE)  # the download spells one file OA_
_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_SAVEE_FLAT = re.compile(r"^(DC|JE|JK|KL)_(a|d|f|h|n|sa|su)(\d\d)$")
_SAVEE_CODE = re.compile(r"^(a|d|f|h|n|sa|su)(\d\d)$")
_EMODB = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")


def parse_name(path: Path) -> tuple[str, str, str] | None:
    """``(corpus, raw_label, speaker)`` from a file's name (and folder), or None if unrecognized."""
    stem = path.stem
    if m := _RAVDESS.match(stem):
        code = m.group(1)
        return "ravdess", RAVDESS_EMOTIONS.get(code, f"ravdess-emotion-{code}"), m.group(5)
    if m := _CREMA.match(stem):
        return "cremad", m.group(3).lower(), m.group(1)
    if m := _SAVEE_FLAT.match(stem):
        return "savee", m.group(2), m.group(1)
    if (m := _SAVEE_CODE.match(stem)) and path.parent.name in {"DC", "JE", "JK", "KL"}:
        return "savee", m.group(1), path.parent.name
    if m := _TESS.match(stem):
        return "tess", m.group(2).lower(), m.group(1).upper()[:2] + "F"
    if m := _EMODB.match(stem):
        return "emodb", EMODB_EMOTIONS[m.group(3)], m.group(1)
    return None


def map_label(raw: str) -> str | None:
    return LABEL_SYNONYMS.get(raw.strip().lower())


@dataclass
class DatasetSummary:
    clips: int = 0
    per_corpus: Counter = field(default_factory=Counter)
    unrecognized: list[Path] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # labels left out with --drop-label
    unreadable: list[Path] = field(default_factory=list)  # filled in while loading audio

    def lines(self) -> list[str]:
        out = [f"clips: {self.clips} ({', '.join(f'{k} {v}' for k, v in sorted(self.per_corpus.items()))})"]
        if self.dropped:
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
            out.append(f"left out (--drop-label): {dropped}")
        if self.unrecognized:
            out.append(f"unrecognized file names skipped: {len(self.unrecognized)} (e.g. {self.unrecognized[0]})")
        if self.unreadable:
            out.append(f"corrupt/empty/unreadable files skipped: {len(self.unreadable)}")
        return out


def _read_manifest(manifest: Path) -> list[tuple[Path, str, str]]:
    try:
        with manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "label", "speaker"} - set(reader.fieldnames or [])
            if missing:
                columns = ", ".join(sorted(missing))
                raise TrainingError(f"{manifest}: missing column(s) {columns} (need path,label,speaker)")
            rows = [(manifest.parent / row["path"], row["label"], row["speaker"]) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainingError(f"cannot read manifest {manifest}: {exc}") from None
    return rows


def discover(paths: list[Path | str], drop_labels: tuple[str, ...] = ()) -> tuple[list[Clip], DatasetSummary]:
    """All labelled clips under ``paths``; raises TrainingError for user mistakes.

    A folder holding ``manifest.csv`` (or a ``.csv`` path) is read as a manifest; anything else
    is searched recursively for audio files named by one of the corpus schemes above.
    """
    summary = DatasetSummary()
    clips: list[Clip] = []
    unknown: Counter = Counter()
    drop = {d.strip().lower() for d in drop_labels}
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise TrainingError(f"data path not found: {root}")
        entries: list[tuple[Path, str, str, str]] = []
        manifest = root if root.suffix.lower() == ".csv" else root / "manifest.csv"
        if manifest.is_file():
            tag = f"manifest:{manifest.parent.name}"
            entries = [(p, lab, spk, tag) for p, lab, spk in _read_manifest(manifest)]
        else:
            files = [root] if root.is_file() else sorted(
                p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            for path in files:
                parsed = parse_name(path)
                if parsed is None:
                    summary.unrecognized.append(path)
                    continue
                corpus, raw, speaker = parsed
                entries.append((path, raw, speaker, corpus))
        if not entries:
            raise TrainingError(
                f"no recognizable audio in {root} (expected RAVDESS, TESS, CREMA-D, SAVEE or EmoDB "
                "file names, or a manifest.csv with path,label,speaker)"
            )
        for path, raw, speaker, corpus in entries:
            if raw.strip().lower() in drop:
                summary.dropped[raw.strip().lower()] += 1
                continue
            label = map_label(raw)
            if label is None:
                unknown[raw] += 1
                continue
            clips.append(Clip(path, label, f"{corpus}:{speaker}", corpus))
            summary.per_corpus[corpus] += 1
    if unknown:
        names = ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items()))
        raise TrainingError(
            f"label(s) outside the model's set {list(EMOTIONS)}: {names}; leave them out with --drop-label"
        )
    summary.clips = len(clips)
    return clips, summary


# The locked test: speakers no recipe decision may look at, fixed before any experiment on three
# corpora (issue 10). The rule: the last of each corpus in sorted order, two men and two women
# among the RAVDESS actors (odd numbers are men); RAVDESS 21-24 are not in the project's copy at
# all (an outside check holds them). Models meant to be scored on it train without these speakers.
LOCKED_TEST_SPEAKERS: frozenset[str] = frozenset(
    {"ravdess:17", "ravdess:18", "ravdess:19", "ravdess:20", "tess:YAF", "savee:KL"}
)


def corpus_labels(clips: list[Clip]) -> dict[str, frozenset[str]]:
    """The labels each corpus has (among ``clips``).

    A clip is evidence only among its own corpus's labels: TESS has no "calm", so a TESS clip
    says nothing against calm, and the training loss is masked to these labels.
    """
    found: dict[str, set[str]] = {}
    for clip in clips:
        found.setdefault(clip.corpus, set()).add(clip.label)
    return {corpus: frozenset(labels) for corpus, labels in found.items()}


def actor_number(clip: Clip) -> int | None:
    """RAVDESS actor number (1-24), or None for other corpora."""
    if clip.corpus != "ravdess":
        return None
    return int(clip.speaker.split(":")[1])


def corpus_of(speaker: str) -> str:
    """The corpus of a ``"<corpus>:<id>"`` speaker."""
    return speaker.split(":", 1)[0]


def speaker_folds(speakers: list[str], n_folds: int) -> list[list[str]]:
    """Whole speakers dealt round-robin (sorted order) into ``n_folds`` disjoint folds."""
    unique = sorted(set(speakers))
    if not 2 <= n_folds <= len(unique):
        raise TrainingError(f"need 2 <= folds <= number of speakers ({len(unique)}), got {n_folds}")
    return [unique[i::n_folds] for i in range(n_folds)]


def corpus_folds(speakers: list[str]) -> list[list[str]]:
    """One fold per corpus (leave one corpus out): its model has heard no voice, studio or
    accent of the held-out corpus, the nearest the data here comes to a user's recordings."""
    by_corpus: dict[str, list[str]] = {}
    for speaker in sorted(set(speakers)):
        by_corpus.setdefault(corpus_of(speaker), []).append(speaker)
    if len(by_corpus) < 2:
        raise TrainingError(f"leaving one corpus out needs at least two corpora, got {len(by_corpus)}")
    return list(by_corpus.values())


def split_by_speaker(clips: list[Clip], test_speakers: set[str]) -> tuple[list[Clip], list[Clip]]:
    train = [c for c in clips if c.speaker not in test_speakers]
    test = [c for c in clips if c.speaker in test_speakers]
    return train, test
