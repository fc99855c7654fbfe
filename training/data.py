"""Clips -> log-mel frames (clean and augmented copies), cached, plus windows for evaluation.

Every feature here comes from ``ser_live.frontend.offline_front_end`` (DC filter, log-mel,
voice activity), windows are picked as speech by the app's own rule (``ser_live.gate``) and every
window the model sees goes through ``ser_live.features.normalize_window``: exactly what the app
computes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ser_live.adaptation import AdaptationPrior, SpeechMoments, apply
from ser_live.audio_io import load_audio
from ser_live.config import EMOTIONS, FeatureConfig
from ser_live.errors import AudioFileError
from ser_live.features import normalize_window, relative_features, window_starts
from ser_live.frontend import ClipAnalysis, offline_front_end
from ser_live.gate import GateConfig
from ser_live.vad import SpeechDetector
from training import augment
from training.datasets import Clip, DatasetSummary

if TYPE_CHECKING:
    from training.sessions import SessionSim

log = logging.getLogger(__name__)
AUGMENT_VERSION = 4  # 4: DC filter in front, speech windows picked by the VAD
START_STRIDE = 5  # candidate crop starts every 5 frames (50 ms)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def pad_to_window(audio: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """Clips shorter than one window get quiet dither on both sides (the app would hear a room)."""
    need = cfg.window_samples - len(audio)
    if need <= 0:
        return audio
    left = need // 2
    dither = (rng.standard_normal(need) * 1e-4).astype(np.float32)
    return np.concatenate([dither[:left], audio, dither[left:]]).astype(np.float32)


def load_clips(clips: list[Clip], cfg: FeatureConfig, summary: DatasetSummary | None = None
               ) -> tuple[list[Clip], list[np.ndarray]]:
    """Decoded audio of every readable clip; unreadable ones are skipped, warned about and counted."""
    kept, audio = [], []
    rng = np.random.default_rng(0)
    for clip in clips:
        try:
            samples = load_audio(clip.path, cfg.sample_rate_hz)
        except AudioFileError as exc:
            warn(f"skipped: {exc}")
            if summary is not None:
                summary.unreadable.append(clip.path)
            continue
        kept.append(clip)
        audio.append(pad_to_window(samples, cfg, rng))
    if summary is not None:
        summary.clips = len(kept)
    return kept, audio


@dataclass
class Bank:
    """Frames of every (clip, copy); copy 0 is the clean clip."""

    logmel: np.ndarray  # (total_frames, n_mels) float16, all items concatenated
    offsets: np.ndarray  # (items + 1,) frame offsets
    item_clip: np.ndarray  # (items,) index into the clip list
    item_copy: np.ndarray  # (items,) 0 = clean
    starts: list[np.ndarray]  # per item: window starts that the app would call speech (or all starts)

    def frames(self, item: int) -> np.ndarray:
        return self.logmel[self.offsets[item] : self.offsets[item + 1]]


def _speech_starts(clip: ClipAnalysis, cfg: FeatureConfig, gate: GateConfig) -> np.ndarray:
    last = len(clip.features) - cfg.frames_per_window
    candidates = np.arange(0, last + 1, START_STRIDE)
    good = [s for s in candidates if clip.window(int(s), cfg).is_speech(gate)]
    return np.asarray(good if good else candidates, dtype=np.int32)


@dataclass(frozen=True)
class Rendering:
    """How a clip's augmented copies are made (``augment.random_chain``, seeded by clip and copy);
    ``Recipe.rendering`` gives a recipe's."""

    copies: int
    seed: int
    codec_share: float  # share of the copies that end in a lossy codec (MP3 or Opus)


def _cache_key(clips: list[Clip], cfg: FeatureConfig, rendering: Rendering) -> str:
    h = hashlib.sha256()
    # normalization happens per window, after the bank: it does not change what the bank holds
    window_level = ("normalization", "relative_floor_db", "front_end", "n_mfcc")
    frame_cfg = {k: v for k, v in cfg.to_dict().items() if k not in window_level}
    h.update(json.dumps([frame_cfg, asdict(rendering), AUGMENT_VERSION]).encode())
    for clip in clips:  # by content, not path and time: a copied corpus (a new machine) keeps its cache
        digest = hashlib.sha256(clip.path.read_bytes()).hexdigest()
        h.update(f"{clip.path.name}|{clip.speaker}|{clip.label}|{digest}".encode())
    return h.hexdigest()[:20]


def _bank_path(clips: list[Clip], cfg: FeatureConfig, rendering: Rendering, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"bank-{_cache_key(clips, cfg, rendering)}.npz"


def load_bank(clips: list[Clip], cfg: FeatureConfig, rendering: Rendering, cache_dir: Path) -> Bank | None:
    """The cached bank of exactly these clips and settings, or None (CV worker processes read it)."""
    path = _bank_path(clips, cfg, rendering, cache_dir)
    if not path.exists():
        return None
    data = np.load(path)
    starts = np.split(data["starts"], data["start_offsets"][1:-1])
    return Bank(data["logmel"], data["offsets"], data["item_clip"], data["item_copy"], starts)


def _render(audio: list[np.ndarray], first_clip: int, cfg: FeatureConfig, rendering: Rendering
            ) -> tuple[list[np.ndarray], list[int], list[int], list[np.ndarray]]:
    """Log-mel frames and speech starts of each clip and its renderings; clip numbers start at
    ``first_clip`` (they seed the augmentation, so a chunk renders as it would in one pass)."""
    gate = GateConfig()  # the app's default rule picks the windows the model learns from
    detector = SpeechDetector()
    mels, item_clip, item_copy, starts = [], [], [], []
    for ci, samples in enumerate(audio, start=first_clip):
        for copy in range(rendering.copies + 1):
            if copy == 0:
                rendered = samples
            else:
                rng = np.random.default_rng([rendering.seed, ci, copy])
                chain = augment.random_chain(samples, cfg.sample_rate_hz, rng, rendering.codec_share)
                rendered = pad_to_window(chain, cfg, rng)
            analysed = offline_front_end(rendered, cfg, detector)
            mels.append(analysed.features.logmel.astype(np.float16))
            item_clip.append(ci)
            item_copy.append(copy)
            starts.append(_speech_starts(analysed, cfg, gate))
    return mels, item_clip, item_copy, starts


def build_bank(clips: list[Clip], audio: list[np.ndarray], cfg: FeatureConfig, rendering: Rendering,
               cache_dir: Path | None = None, parallel: int = 1) -> Bank:
    """Features of each clip plus its ``rendering.copies`` augmented renderings.

    ``parallel`` > 1 renders contiguous chunks of clips in that many processes: the same bank,
    sooner (rendering and the speech detector cost about 0.3 s of CPU per clip).
    """
    path = None
    if cache_dir is not None:
        path = _bank_path(clips, cfg, rendering, cache_dir)
        if (cached := load_bank(clips, cfg, rendering, cache_dir)) is not None:
            return cached
    if parallel > 1 and len(audio) > 1:
        from ser_live.workers import worker_pool

        bounds = np.linspace(0, len(audio), parallel + 1).astype(int)
        with worker_pool(parallel) as pool:
            parts = list(pool.map(_render, [audio[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
                                  bounds[:-1].tolist(), [cfg] * parallel, [rendering] * parallel))
    else:
        parts = [_render(audio, 0, cfg, rendering)]
    mels = [m for part in parts for m in part[0]]
    starts = [s for part in parts for s in part[3]]
    bank = Bank(np.concatenate(mels), np.cumsum([0] + [len(m) for m in mels]).astype(np.int64),
                np.asarray([c for part in parts for c in part[1]], np.int32),
                np.asarray([c for part in parts for c in part[2]], np.int16), starts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        start_offsets = np.cumsum([0] + [len(s) for s in starts])
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, logmel=bank.logmel, offsets=bank.offsets, item_clip=bank.item_clip,
                 item_copy=bank.item_copy, starts=np.concatenate(starts), start_offsets=start_offsets)
        tmp.replace(path)
    return bank


def sample_windows(bank: Bank, items: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator,
                   sessions: SessionSim | None = None) -> np.ndarray:
    """One normalized window per given item, at a random speech start; ``session_cmvn`` windows
    are normalized by a simulated session of their speaker (``training.sessions``)."""
    n = cfg.frames_per_window
    out = np.empty((len(items), n, cfg.n_mels), dtype=np.float32)
    for k, item in enumerate(items):
        s = int(rng.choice(bank.starts[item]))
        out[k] = bank.frames(item)[s : s + n]
    if cfg.normalization == "session_cmvn":
        if sessions is None:
            raise ValueError("session_cmvn training windows need simulated sessions")
        return sessions.normalize(out, np.asarray(items), cfg, rng)
    return normalize_window(out, cfg)


@dataclass
class EvalWindows:
    """The windows the app would produce for each clean clip, one every hop.

    For window normalizations ``windows`` are the model's inputs. For ``session_cmvn`` they are
    relative features and ``clip_moments`` each clip's speech statistics: :meth:`inputs` blends
    them with a model's prior, as ``ser-live analyze`` adapts to each file."""

    windows: np.ndarray  # (n, frames, features) float32
    clip_index: np.ndarray  # (n,)
    speech: np.ndarray  # (n,) bool: the app calls this window speech
    clip_moments: list[SpeechMoments] | None = None

    def inputs(self, prior: AdaptationPrior | None, groups: np.ndarray | None = None) -> np.ndarray:
        """The model's inputs; with ``groups`` (one id per clip, e.g. its speaker) each window is
        normalized by its group's pooled statistics, as ``analyze --adapt-by folder`` would."""
        if self.clip_moments is None:
            return self.windows
        if prior is None:
            raise ValueError("session_cmvn windows need the model's adaptation prior")
        moments = self.clip_moments
        if groups is not None:
            pooled: dict = {}
            for g, m in zip(groups, moments, strict=True):
                pooled[g] = pooled[g].merge(m) if g in pooled else m
            moments = [pooled[g] for g in groups]
        stats = [m.blended(prior) for m in moments]
        mean = np.stack([stats[c][0] for c in self.clip_index])
        spread = np.asarray([stats[c][1] for c in self.clip_index])
        return apply(self.windows, mean, spread)


def eval_windows(audio: list[np.ndarray], cfg: FeatureConfig, gate: GateConfig | None = None) -> EvalWindows:
    gate = gate or GateConfig()
    detector = SpeechDetector()
    adapts = cfg.normalization == "session_cmvn"
    wins, idx, speech, moments = [], [], [], []
    for ci, samples in enumerate(audio):
        analysed = offline_front_end(samples, cfg, detector)
        heard = SpeechMoments.empty(cfg.n_features)
        for s in window_starts(len(analysed.features), cfg):
            window = analysed.window(s, cfg)
            is_speech = window.is_speech(gate)
            if adapts:
                relative = relative_features(window.features.logmel, cfg)
                if is_speech:
                    heard.add(relative, cfg.hop_s)
                wins.append(relative.astype(np.float32))
            else:
                wins.append(normalize_window(window.features.logmel, cfg))
            idx.append(ci)
            speech.append(is_speech)
        moments.append(heard)
    return EvalWindows(np.stack(wins), np.asarray(idx), np.asarray(speech), moments if adapts else None)


def label_indices(clips: list[Clip]) -> np.ndarray:
    return np.asarray([EMOTIONS.index(c.label) for c in clips], dtype=np.int64)
