"""Honest confidence: the temperature stored in the model JSON is what the runtime applies, and
fitting recovers a known miscalibration (issue 10)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser_live.audio_io import load_audio
from ser_live.errors import ModelError
from ser_live.model import Calibration, EmotionClassifier, ModelMetadata
from ser_live.processor import ProcessorSettings, StreamProcessor
from tests.conftest import REPO, fixture_clips
from training.calibration import (
    OutOfFold,
    class_bias_check,
    clip_temperature_check,
    ece,
    fit_class_bias,
    fit_temperature,
    write_calibration,
)


def _copy_model(model_path: Path, folder: Path) -> Path:
    copy = folder / "m.tflite"
    shutil.copy(model_path, copy)
    shutil.copy(model_path.with_suffix(".json"), copy.with_suffix(".json"))
    return copy


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_stored_temperature_is_applied_by_predict(model_path: Path, tmp_path: Path) -> None:
    plain = _copy_model(model_path, tmp_path)
    write_calibration(plain.with_suffix(".json"), 1.0, 0.5, "test")
    hot_dir = tmp_path / "hot"
    hot_dir.mkdir()
    hot = _copy_model(model_path, hot_dir)
    write_calibration(hot.with_suffix(".json"), 2.5, 0.4, "test")
    assert json.loads(hot.with_suffix(".json").read_text())["calibration"]["temperature"] == 2.5
    raw_clf, cal_clf = EmotionClassifier(plain), EmotionClassifier(hot)
    assert cal_clf.metadata.calibration == Calibration(2.5, 0.4, "test")
    rng = np.random.default_rng(0)
    shape = raw_clf.metadata.input_shape[1:3]
    for _ in range(5):
        window = rng.standard_normal(shape).astype(np.float32)
        raw, cal = raw_clf.predict(window), cal_clf.predict(window)
        np.testing.assert_allclose(cal, Calibration(2.5).apply(raw), rtol=1e-5)
        np.testing.assert_allclose(cal.sum(), 1.0, rtol=1e-5)
        assert cal.argmax() == raw.argmax() and cal.max() < raw.max()  # softer, same verdict


def test_a_model_json_without_calibration_means_temperature_one(model_path: Path, tmp_path: Path) -> None:
    copy = _copy_model(model_path, tmp_path)
    meta = json.loads(copy.with_suffix(".json").read_text())
    meta.pop("calibration", None)
    copy.with_suffix(".json").write_text(json.dumps(meta))
    assert ModelMetadata.load(copy.with_suffix(".json")).calibration.temperature == 1.0
    meta["calibration"] = {"temperature": 0.0}
    copy.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="temperature"):
        ModelMetadata.load(copy.with_suffix(".json"))


def test_fitting_recovers_a_known_overconfidence_and_removes_the_calibration_error() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 0.8, (20000, 8))  # mild enough that few probabilities reach the int8 floor
    truth = _softmax(logits)  # what the labels are drawn from
    labels = np.asarray([rng.choice(8, p=p) for p in truth])
    overconfident = _softmax(logits * 2.0)  # a model twice as sure as it should be
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(2.0, rel=0.05)
    assert ece(overconfident, labels) > 0.1
    assert ece(Calibration(t).apply(overconfident), labels) < 0.02


def test_the_summary_shows_a_corpus_too_sure_beside_one_too_shy(tmp_path: Path) -> None:
    """One temperature for all: the per-corpus breakdown (printed by ``python -m training
    calibration``) shows the corpus it leaves too sure next to the one it leaves too shy."""
    rng = np.random.default_rng(2)
    clips, per_clip = 400, 3
    labels = rng.integers(0, 8, clips)
    corpus = np.where(np.arange(clips) < clips // 2, "shy", "sure")
    right = np.where(corpus == "shy", rng.random(clips) < 0.8, rng.random(clips) < 0.2)
    guess = np.where(right, labels, (labels + 1 + rng.integers(0, 7, clips)) % 8)
    peak = np.where(corpus == "shy", 0.4, 0.9)  # shy: right 80%, says 0.4; sure: right 20%, says 0.9
    clip_probs = np.repeat(((1 - peak) / 7)[:, None], 8, axis=1)
    clip_probs[np.arange(clips), guess] = peak
    oof = OutOfFold(np.repeat(clip_probs, per_clip, axis=0).astype(np.float32), np.repeat(np.arange(clips), per_clip),
                    np.ones(clips * per_clip, dtype=bool), labels, np.arange(clips) % 2 + 1, corpus)
    oof.save(tmp_path / "oof.npz")
    proc = subprocess.run([sys.executable, "-m", "training", "calibration", "--cv-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    by_corpus = json.loads(proc.stdout)["clip_per_corpus"]
    assert by_corpus["shy"]["mean_confidence"] < by_corpus["shy"]["accuracy"] - 0.1
    assert by_corpus["sure"]["mean_confidence"] > by_corpus["sure"]["accuracy"] + 0.1
    assert {k["clips"] for k in by_corpus.values()} == {clips // 2}


def test_a_clip_temperature_is_measured_cross_fitted_and_fixes_a_shyness_all_folds_share() -> None:
    """Clips right 80% of the time that say 0.4 in every fold: the clip temperature each fold gets
    from the others sharpens them, and the cross-fitted clip ECE and NLL fall."""
    rng = np.random.default_rng(3)
    clips = 900
    labels = rng.integers(0, 8, clips)
    guess = np.where(rng.random(clips) < 0.8, labels, (labels + 1 + rng.integers(0, 7, clips)) % 8)
    shy = np.full((clips, 8), 0.6 / 7)
    shy[np.arange(clips), guess] = 0.4
    check = clip_temperature_check(shy, labels, np.arange(clips) % 3 + 1)
    assert set(check["cross_fitted_temperatures"]) == {1, 2, 3}
    assert all(t < 1.0 for t in check["cross_fitted_temperatures"].values())
    assert check["ece_clip"]["with"] < 0.05 < 0.3 < check["ece_clip"]["without"]
    assert check["nll_clip"]["with"] < check["nll_clip"]["without"]


def test_class_biases_are_fitted_and_measured_cross_fitted_and_fix_a_class_every_fold_overcalls() -> None:
    """A model that adds 1.5 to calm's logit in every fold: the biases each fold gets from the
    others lower calm, the verdicts it stole go back, and NLL and clip accuracy improve. A class
    over-called in one fold only (a corpus the others never saw) is what they cannot fix."""
    rng = np.random.default_rng(4)
    clips, per_clip = 1200, 2
    logits = rng.normal(0, 1.2, (clips, 8))
    labels = np.asarray([rng.choice(8, p=p) for p in _softmax(logits)])
    calm = 1
    skewed = logits.copy()
    skewed[:, calm] += 1.5
    t, bias = fit_class_bias(_softmax(skewed), labels)
    assert t == pytest.approx(1.0, abs=0.1) and bias[calm] == bias.min() and bias[calm] < -1.0
    windows = np.repeat(_softmax(skewed), per_clip, axis=0)
    oof = OutOfFold(windows.astype(np.float32), np.repeat(np.arange(clips), per_clip),
                    np.ones(len(windows), dtype=bool), labels, np.arange(clips) % 3 + 1, np.full(clips, "x"))
    check = class_bias_check(oof, windows)
    assert all(fold["bias"]["calm"] < -1.0 for fold in check["cross_fitted"].values())
    assert check["with"]["nll_clip"] < check["without"]["nll_clip"]
    assert check["with"]["clip_accuracy"] > check["without"]["clip_accuracy"] + 0.03
    assert check["with"]["clip_accuracy_per_corpus"]["x"] == check["with"]["clip_accuracy"]


@pytest.mark.parametrize(("uncertain_below", "expect"), [(0.0, False), (1.0, True)])
def test_below_the_models_threshold_a_verdict_is_marked_uncertain(model_path: Path, tmp_path: Path,
                                                                   uncertain_below: float, expect: bool) -> None:
    """The threshold comes from the model JSON; label and probabilities are kept either way."""
    copy = _copy_model(model_path, tmp_path)
    meta = ModelMetadata.load(copy.with_suffix(".json"))
    write_calibration(copy.with_suffix(".json"), meta.calibration.temperature, uncertain_below, "test")
    clf = EmotionClassifier(copy)
    processor = StreamProcessor(clf, ProcessorSettings(smoothing_s=0.0))
    results = processor.push(load_audio(fixture_clips()[4], clf.features.sample_rate_hz)) + processor.flush()
    speech = [r.to_record() for r in results if r.speech]
    assert speech and all(r["uncertain"] is expect and r["label"] and r["probs"] for r in speech)
    assert all(r.to_record()["uncertain"] is False for r in results if not r.speech)
