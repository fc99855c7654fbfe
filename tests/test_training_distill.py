"""Distillation (issue 10, ``--distill W --teacher M --teacher-cv DIR``): the shipped widths learn
from a wider model's softened probabilities, at no cost to the app's hop.

The teacher must see the very windows the student trains on (after SpecAugment and mixup), its
part of the loss must vanish when the student agrees with it, and a teacher that heard the voices
a student is scored on is refused, or the student's held-out figures would carry that knowledge.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ser_live.config import EMOTIONS, FeatureConfig  # noqa: E402
from ser_live.errors import SerLiveError  # noqa: E402
from training import TrainingError  # noqa: E402
from training.data import Bank  # noqa: E402
from training.datasets import Clip  # noqa: E402
from training.evaluate import FloatTFLite, MeanOf, predict_all  # noqa: E402
from training.pipeline import fold_jobs, teacher_model  # noqa: E402
from training.train import Recipe, _epoch_data, label_masks, masked_cross_entropy, soften  # noqa: E402

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "ser-cnn.tflite"
SHIPPED_FLOAT = SHIPPED.with_name("ser-cnn.float.tflite")
K = len(EMOTIONS)


def _loss(y_true: np.ndarray, y_pred: np.ndarray, weight: float = 0.0, temperature: float = 2.0) -> np.ndarray:
    fn = masked_cross_entropy(0.05, weight, temperature)
    return np.asarray(fn(y_true.astype(np.float32), y_pred.astype(np.float32)))


def test_soften_flattens_renormalizes_and_keeps_the_mask() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(K) * 0.3, size=5).astype(np.float32)
    full = np.ones_like(probs)
    np.testing.assert_allclose(soften(probs, full, 1.0), probs, rtol=1e-4, atol=1e-6)
    warm = soften(probs, full, 2.0)
    np.testing.assert_allclose(warm.sum(axis=1), 1.0, rtol=1e-5)
    assert (warm.max(axis=1) < probs.max(axis=1)).all()  # a higher temperature spreads the mass
    no_calm = full.copy()
    no_calm[:, EMOTIONS.index("calm")] = 0
    masked = soften(probs, no_calm, 2.0)
    assert (masked[:, EMOTIONS.index("calm")] == 0).all()
    np.testing.assert_allclose(masked.sum(axis=1), 1.0, rtol=1e-5)


def test_a_student_that_agrees_with_its_teacher_pays_only_for_the_label() -> None:
    rng = np.random.default_rng(1)
    teacher = rng.dirichlet(np.ones(K), size=6).astype(np.float32)
    target = np.eye(K, dtype=np.float32)[rng.integers(0, K, 6)]
    mask = np.ones_like(target)
    y_true = np.concatenate([target, mask, soften(teacher, mask, 2.0)], axis=1)
    hard = _loss(y_true[:, :2 * K], teacher)
    np.testing.assert_allclose(_loss(y_true, teacher, 0.5), 0.5 * hard, rtol=1e-4)
    # a student that disagrees pays more than its label part: the KL term is positive
    other = rng.dirichlet(np.ones(K) * 0.2, size=6).astype(np.float32)
    assert (_loss(y_true, other, 0.5) > 0.5 * _loss(y_true[:, :2 * K], other) + 1e-3).all()


def test_the_teacher_sees_the_very_windows_the_student_trains_on() -> None:
    cfg = FeatureConfig()
    clips = [Clip(Path(f"r{i}.wav"), e, "ravdess:01", "ravdess") for i, e in enumerate(EMOTIONS)]
    frames = cfg.frames_per_window
    rng = np.random.default_rng(2)
    bank = Bank(rng.normal(size=(frames * len(clips), cfg.n_mels)).astype(np.float16),
                np.arange(len(clips) + 1) * frames, np.arange(len(clips), dtype=np.int32),
                np.zeros(len(clips), np.int16), [np.zeros(1, np.int32) for _ in clips])
    labels = np.arange(len(clips))
    teacher = FloatTFLite(SHIPPED_FLOAT)
    recipe = Recipe(crops_per_clip=2, distill_weight=0.5, distill_temperature=3.0)  # SpecAugment and mixup on
    x, y = _epoch_data(bank, [np.asarray([i]) for i in range(len(clips))], labels, label_masks(clips), cfg,
                       recipe, np.random.default_rng(3), None, teacher)
    assert y.shape == (2 * len(clips), 3 * K)
    expected = soften(predict_all(teacher, x[..., 0]), y[:, K:2 * K], 3.0)
    np.testing.assert_allclose(y[:, 2 * K:], expected, rtol=1e-5, atol=1e-7)
    assert np.ptp(y[:, 2 * K:], axis=0).max() > 0.01  # the windows differ, so do the teacher's answers


def _teacher(tmp_path: Path, card: dict, features: dict | None = None, name: str = "teacher") -> Path:
    model = tmp_path / f"{name}.tflite"
    shutil.copy(SHIPPED, model)
    meta = json.loads(SHIPPED.with_suffix(".json").read_text())
    meta["card"] = card
    meta["features"] = features or meta["features"]
    model.with_suffix(".json").write_text(json.dumps(meta))
    return model


def test_a_teacher_that_heard_the_scored_voices_is_refused(tmp_path: Path) -> None:
    cfg = FeatureConfig(normalization=json.loads(SHIPPED.with_suffix(".json").read_text())["features"]
                        ["normalization"])
    fold = _teacher(tmp_path, {"fold": 1, "held_out": ["ravdess:01", "savee:JK"]})
    with pytest.raises(TrainingError, match="float twin teacher.float.tflite is missing"):
        teacher_model(fold, cfg, {"ravdess:01"})  # the int8 file takes int8 input: the float twin teaches
    shutil.copy(SHIPPED_FLOAT, tmp_path / "teacher.float.tflite")
    assert teacher_model(fold, cfg, {"ravdess:01"}).float_path == tmp_path / "teacher.float.tflite"
    with pytest.raises(TrainingError, match="may have trained on ravdess:02"):
        teacher_model(fold, cfg, {"ravdess:01", "ravdess:02"})
    final = _teacher(tmp_path, {"training_data": {"locked_test_speakers_left_out": ["savee:KL", "tess:YAF"]}})
    checked = teacher_model(final, cfg, {"savee:KL", "tess:YAF"})
    assert checked.float_path == tmp_path / "teacher.float.tflite"
    assert checked.card["training_data"]["locked_test_speakers_left_out"] == ["savee:KL", "tess:YAF"]
    with pytest.raises(TrainingError, match="features differ"):
        teacher_model(_teacher(tmp_path, {"held_out": ["x"]}, {**cfg.to_dict(), "n_mels": 40}), cfg, {"x"})
    with pytest.raises(TrainingError, match="expected a .tflite model"):
        teacher_model(tmp_path / "missing.tflite", cfg, set())


def test_the_distill_options_are_checked() -> None:
    from training.__main__ import _make_recipe, build_parser

    args = build_parser().parse_args(["cv", "--data", "x", "--distill", "0.5", "--teacher-cv", "d"])
    assert _make_recipe(args).distill_weight == 0.5 and Recipe().distill_weight == 0.0
    for bad in (["--distill", "1"], ["--distill", "-0.1"], ["--distill-temperature", "0"]):
        with pytest.raises(SerLiveError):
            _make_recipe(build_parser().parse_args(["cv", "--data", "x", *bad]))


def test_an_ensemble_teacher_is_the_mean_of_its_models() -> None:
    """Two seeds' models teach as one: the mean of their probabilities; one model alone teaches
    exactly as before (a student distilled from one teacher is unchanged, to the bit)."""
    from ser_live.model import EmotionClassifier

    rng = np.random.default_rng(4)
    windows = rng.normal(size=(3, *EmotionClassifier(SHIPPED).metadata.input_shape[1:3])).astype(np.float32)
    one, other = FloatTFLite(SHIPPED_FLOAT), EmotionClassifier(SHIPPED)  # float twin and int8 path differ
    a, b = predict_all(one, windows), predict_all(other, windows)
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_allclose(predict_all(MeanOf([one, other]), windows), (a + b) / 2, rtol=1e-6, atol=1e-7)
    assert np.array_equal(predict_all(MeanOf([one]), windows), a)


def test_each_fold_learns_from_every_teacher_cvs_same_fold(tmp_path: Path) -> None:
    cfg = FeatureConfig(normalization=json.loads(SHIPPED.with_suffix(".json").read_text())["features"]
                        ["normalization"])
    groups = [["ravdess:01"], ["ravdess:02"]]
    cvs = [tmp_path / "cv-seed1", tmp_path / "cv-seed2"]
    for cv in cvs:
        for k, held in enumerate(groups, start=1):
            (cv / f"fold{k}").mkdir(parents=True)
            _teacher(cv / f"fold{k}", {"fold": k, "held_out": held}, name="model")
            shutil.copy(SHIPPED_FLOAT, cv / f"fold{k}" / "model.float.tflite")
    clips = [Clip(Path(f"{s}-{e}.wav"), e, f"ravdess:0{s}", "ravdess") for s in (1, 2) for e in EMOTIONS]
    jobs = fold_jobs(clips, groups, tmp_path / "student", cfg, cvs)
    for k, job in enumerate(jobs, start=1):
        expected = tuple(cv / f"fold{k}" / "model.float.tflite" for cv in cvs)
        assert job.teachers == expected and job.card["teachers"] == [str(p) for p in expected]
        assert all(clips[i].speaker not in groups[k - 1] for i in job.train_ids)
    assert fold_jobs(clips, groups, tmp_path / "student", cfg)[0].teachers == ()
    # other folds than the teachers': fold 2's teachers never left ravdess:01 out
    with pytest.raises(TrainingError, match="fold2/model.tflite may have trained on ravdess:01"):
        fold_jobs(clips, [["ravdess:01"], ["ravdess:01", "ravdess:02"]], tmp_path / "student", cfg, cvs)
