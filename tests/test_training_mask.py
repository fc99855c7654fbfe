"""The label mask (issue 10), ``--mask-labels``: a clip is evidence only among its own corpus's labels.

TESS and SAVEE have no "calm": masked, their clips neither reward nor punish the calm output,
and mixup does not blend a clip into a corpus whose label set differs. The default (since two
seeds of each were compared, docs/training.md) is unmasked: every clip counts against the labels
it is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ser_live.config import EMOTIONS, FeatureConfig  # noqa: E402
from training.data import Bank  # noqa: E402
from training.datasets import Clip  # noqa: E402
from training.train import (  # noqa: E402
    Recipe,
    _epoch_clips,
    _epoch_data,
    label_masks,
    masked_cross_entropy,
)

CALM = EMOTIONS.index("calm")


def _clips() -> list[Clip]:
    return [Clip(Path(f"r{i}.wav"), e, "ravdess:01", "ravdess") for i, e in enumerate(EMOTIONS)] + [
        Clip(Path(f"t{i}.wav"), e, "tess:OAF", "tess") for i, e in enumerate(EMOTIONS) if e != "calm"
    ]


def _loss(y_true: np.ndarray, y_pred: np.ndarray, smoothing: float = 0.05) -> np.ndarray:
    return np.asarray(masked_cross_entropy(smoothing)(y_true.astype(np.float32), y_pred.astype(np.float32)))


def _probs(calm: float) -> np.ndarray:
    """A distribution with ``calm`` on calm and the rest spread 4:1:1:... over the others."""
    rest = np.ones(len(EMOTIONS))
    rest[EMOTIONS.index("angry")] = 4.0
    rest[CALM] = 0.0
    return (rest / rest.sum() * (1 - calm) + np.eye(len(EMOTIONS))[CALM] * calm)[None]


def test_the_masks_follow_each_corpus_label_set() -> None:
    masks = label_masks(_clips())
    assert masks.shape == (15, 8)
    assert masks[:8].min() == 1.0  # RAVDESS has all eight
    assert (masks[8:, CALM] == 0).all() and masks[8:].sum(axis=1).tolist() == [7.0] * 7


def test_without_the_mask_every_clip_is_evidence_against_the_labels_it_is_not() -> None:
    from training.__main__ import _make_recipe, build_parser

    assert label_masks(_clips(), own_labels_only=False).min() == 1.0  # a TESS clip's loss covers calm too
    assert not Recipe().mask_labels  # the default since two seeds of each recipe were compared
    assert not _make_recipe(build_parser().parse_args(["cv", "--data", "x"])).mask_labels
    assert _make_recipe(build_parser().parse_args(["cv", "--data", "x", "--mask-labels"])).mask_labels


def test_calm_output_is_no_evidence_for_a_corpus_without_calm() -> None:
    angry = np.eye(len(EMOTIONS))[EMOTIONS.index("angry")][None]
    tess_mask = label_masks(_clips())[-1:]
    full_mask = np.ones_like(tess_mask)
    tess = [_loss(np.concatenate([angry, tess_mask], axis=1), _probs(c)) for c in (0.01, 0.6)]
    ravdess = [_loss(np.concatenate([angry, full_mask], axis=1), _probs(c)) for c in (0.01, 0.6)]
    np.testing.assert_allclose(tess[0], tess[1], rtol=1e-5)  # mass on calm costs a TESS clip nothing
    assert ravdess[1] > ravdess[0] + 0.5  # ... but does cost a RAVDESS clip


def test_with_every_label_present_it_is_keras_smoothed_cross_entropy() -> None:
    import keras

    rng = np.random.default_rng(0)
    pred = rng.dirichlet(np.ones(len(EMOTIONS)), size=6)
    target = np.eye(len(EMOTIONS))[rng.integers(0, len(EMOTIONS), 6)]
    ours = _loss(np.concatenate([target, np.ones_like(target)], axis=1), pred)
    ref = keras.losses.CategoricalCrossentropy(label_smoothing=0.05, reduction=None)(target, pred)
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-5)


def test_mixup_pairs_only_clips_of_the_same_label_set_and_carries_the_mask() -> None:
    cfg = FeatureConfig()
    clips = _clips()
    frames = cfg.frames_per_window
    bank = Bank(np.zeros((frames * len(clips), cfg.n_mels), np.float16), np.arange(len(clips) + 1) * frames,
                np.arange(len(clips), dtype=np.int32), np.zeros(len(clips), np.int16),
                [np.zeros(1, np.int32) for _ in clips])
    labels = np.asarray([EMOTIONS.index(c.label) for c in clips])
    recipe = Recipe(crops_per_clip=4, mixup_fraction=1.0, spec_augment=False)
    items = [np.asarray([i]) for i in range(len(clips))]
    _, y = _epoch_data(bank, items, labels, label_masks(clips), cfg, recipe, np.random.default_rng(1), None)
    target, mask = y[:, :8], y[:, 8:]
    tess_rows = mask[:, CALM] == 0
    assert tess_rows.sum() == 7 * 4 and (~tess_rows).sum() == 8 * 4
    assert (target[tess_rows, CALM] == 0).all()  # never mixed with a RAVDESS calm clip
    np.testing.assert_allclose(target.sum(axis=1), 1.0, rtol=1e-6)


def test_a_large_speaker_is_capped_per_epoch_with_a_fresh_draw() -> None:
    speakers = np.asarray(["tess:OAF"] * 10 + ["ravdess:01"] * 3)
    rng = np.random.default_rng(0)
    first, second = _epoch_clips(speakers, 4, rng), _epoch_clips(speakers, 4, rng)
    for pick in (first, second):
        assert len(pick) == 7 and set(range(10, 13)) <= set(pick.tolist())
    assert first.tolist() != second.tolist()
    assert len(_epoch_clips(speakers, 0, rng)) == 13
