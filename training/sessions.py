"""Simulated sessions for ``session_cmvn`` training: each window normalized as the app would.

The app normalizes a window with its session's speech statistics blended with a prior
(``ser_live.adaptation``): after one window, after a file, after a minute of talk. Training
draws, for every window, a session of random length from the same speaker and rendering
(the window's own clip plus 0 to ``max_others`` more of the speaker's clips) and blends it
with the same arithmetic, so the model learns from windows normalized by early, rough
estimates as well as settled ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_live.adaptation import AdaptationPrior, apply, blend, window_moments
from ser_live.config import FeatureConfig
from ser_live.features import relative_features
from training.data import Bank
from training.datasets import Clip

MAX_OTHERS = 16  # up to ~30 s of a speaker's other clips join a simulated session
WINDOWS_PER_ITEM = 4  # at most this many of a clip's speech windows, a hop apart, make its moments


@dataclass
class ItemMoments:
    """Speech moments of every bank item (clip rendering), summed with a hop's weight per window."""

    sum_mean: np.ndarray  # (items, features)
    sum_square: np.ndarray  # (items, features)
    weight_s: np.ndarray  # (items,)


def item_moments(bank: Bank, cfg: FeatureConfig, items: np.ndarray) -> ItemMoments:
    """Moments of up to ``WINDOWS_PER_ITEM`` speech windows of each of ``items``, one hop apart
    (as the app's); other items' rows stay zero."""
    n_items = len(bank.item_clip)
    sums = np.zeros((2, n_items, cfg.n_features))
    weight = np.zeros(n_items)
    n, hop = cfg.frames_per_window, cfg.frames_per_hop
    for item in items:
        starts = bank.starts[item]
        picked = [int(s) for s in starts if s % hop == 0][:WINDOWS_PER_ITEM] or [int(starts[0])]
        frames = bank.frames(item).astype(np.float32)
        windows = np.stack([frames[s : s + n] for s in picked])
        mean, square = window_moments(relative_features(windows, cfg))
        sums[0, item] = cfg.hop_s * mean.sum(axis=0)
        sums[1, item] = cfg.hop_s * square.sum(axis=0)
        weight[item] = cfg.hop_s * len(picked)
    return ItemMoments(sums[0], sums[1], weight)


def fit_prior(moments: ItemMoments, bank: Bank, clip_ids: np.ndarray, clips: list[Clip]) -> AdaptationPrior:
    """The average training speaker: each speaker's clean speech moments, averaged over speakers
    (so TESS's 1,400 clips a speaker count as one voice, as a RAVDESS actor's 60 do)."""
    clean = np.flatnonzero((bank.item_copy == 0) & np.isin(bank.item_clip, clip_ids))
    speakers = np.asarray([clips[int(bank.item_clip[i])].speaker for i in clean])
    means, squares = [], []
    for speaker in np.unique(speakers):
        mine = clean[speakers == speaker]
        total = moments.weight_s[mine].sum()
        means.append(moments.sum_mean[mine].sum(axis=0) / total)
        squares.append(moments.sum_square[mine].sum(axis=0) / total)
    return AdaptationPrior(tuple(np.mean(means, axis=0).tolist()), tuple(np.mean(squares, axis=0).tolist()))


def make_sessions(bank: Bank, clips: list[Clip], clip_ids: np.ndarray, cfg: FeatureConfig) -> SessionSim | None:
    """Simulated sessions over the bank items of ``clip_ids`` (None unless ``session_cmvn``)."""
    if cfg.normalization != "session_cmvn":
        return None
    items = np.flatnonzero(np.isin(bank.item_clip, clip_ids))
    moments = item_moments(bank, cfg, items)
    return SessionSim(bank, moments, fit_prior(moments, bank, clip_ids, clips), clips, clip_ids)


class SessionSim:
    """Draws a simulated session for each sampled window and normalizes the window with it."""

    def __init__(self, bank: Bank, moments: ItemMoments, prior: AdaptationPrior, clips: list[Clip],
                 clip_ids: np.ndarray) -> None:
        self.moments = moments
        self.prior = prior
        keys: dict[tuple[str, int], list[int]] = {}
        allowed = set(np.asarray(clip_ids).tolist())
        self.item_key: dict[int, tuple[str, int]] = {}
        for item, (ci, copy) in enumerate(zip(bank.item_clip, bank.item_copy, strict=True)):
            if int(ci) in allowed:
                key = (clips[int(ci)].speaker, int(copy))
                keys.setdefault(key, []).append(item)
                self.item_key[item] = key
        self.peers = {k: np.asarray(v) for k, v in keys.items()}

    def normalize(self, raw: np.ndarray, items: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator
                  ) -> np.ndarray:
        """``raw`` log-mel windows ``(n, frames, mels)`` of ``items`` -> model inputs."""
        m = self.moments
        sum_mean = m.sum_mean[items].copy()
        sum_square = m.sum_square[items].copy()
        weight = m.weight_s[items].copy()
        for row, item in enumerate(items):
            peers = self.peers[self.item_key[int(item)]]
            others = rng.choice(peers, size=min(int(rng.integers(0, MAX_OTHERS + 1)), len(peers)), replace=False)
            others = others[others != item]
            sum_mean[row] += m.sum_mean[others].sum(axis=0)
            sum_square[row] += m.sum_square[others].sum(axis=0)
            weight[row] += m.weight_s[others].sum()
        mean, spread = blend(self.prior, sum_mean, sum_square, weight)
        return apply(relative_features(raw, cfg), mean, spread)
