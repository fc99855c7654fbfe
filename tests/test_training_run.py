"""A tiny real training run: fixture clips, one epoch, int8 export, loaded by the app's classifier."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ser_live.config import EMOTIONS, FeatureConfig  # noqa: E402
from ser_live.features import normalize_window, offline_features  # noqa: E402
from ser_live.model import EmotionClassifier  # noqa: E402
from training import TrainingError  # noqa: E402
from training.conditions import InputCondition  # noqa: E402
from training.pipeline import evaluate_command, train_command  # noqa: E402
from training.train import Recipe  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ravdess"

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny"
    recipe = Recipe(epochs=1, copies=1, crops_per_clip=1, batch_size=8, widths=(4, 8, 8, 8), seed=3, threads=2)
    train_command([str(FIXTURES)], out, FeatureConfig(), recipe, actors="1-2", cache_dir=None, log=lambda *_: None)
    return out.with_name("tiny.tflite")


def test_export_loads_through_the_app_classifier_and_predicts(tiny_model: Path) -> None:
    clf = EmotionClassifier(tiny_model)
    assert clf.labels == EMOTIONS
    assert clf.features == FeatureConfig()
    meta = json.loads(tiny_model.with_suffix(".json").read_text())
    assert meta["input"]["dtype"] == "int8" and meta["input"]["shape"] == [1, 197, 64, 1]
    assert meta["card"]["licence"].startswith("CC BY-NC-SA 4.0") and "e0196391" in meta["card"]["citation"]
    assert meta["card"]["int8_size_bytes"] == tiny_model.stat().st_size
    agreement = meta["card"]["final_model_int8_float_agreement"]
    assert 0.0 <= agreement["speech_windows"] <= 1.0 and 0.0 <= agreement["all_windows"] <= 1.0
    from ser_live.audio_io import load_audio

    audio = load_audio(sorted(FIXTURES.rglob("*.flac"))[0], 16000)
    cfg = clf.features
    window = normalize_window(offline_features(audio, cfg).logmel[: cfg.frames_per_window], cfg)
    probs = clf.predict(window)
    assert probs.shape == (len(EMOTIONS),) and np.isclose(probs.sum(), 1.0, atol=1e-3)


def test_evaluate_reports_clip_window_and_agreement(tiny_model: Path, tmp_path: Path) -> None:
    res = evaluate_command([str(FIXTURES)], tiny_model, report_dir=tmp_path / "report", log=lambda *_: None)
    assert res.clip["n"] == 16
    assert 0.0 <= res.clip["accuracy"] <= 1.0 and 0.0 <= res.window["uar"] <= 1.0
    assert res.agreement is not None and 0.0 <= res.agreement <= 1.0
    for name in ("metrics.json", "report.txt", "confusion_clip.png", "confusion_window.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_metadata_that_does_not_match_the_tensors_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    from ser_live.errors import ModelError

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(tiny_model.read_bytes())
    meta = json.loads(tiny_model.with_suffix(".json").read_text())
    meta["features"]["n_mels"] = 40
    bad.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="does not match"):
        EmotionClassifier(bad)


def test_a_quieter_microphone_gives_the_model_the_same_windows(tiny_model: Path) -> None:
    """New models use gain_cmvn: with 30 dB less input (gate moved with it, as --gain-db does)
    the same windows count as speech and the model sees the same numbers (up to float error)."""
    from ser_live.audio_io import load_audio
    from ser_live.gate import GateConfig
    from training.data import eval_windows

    cfg = EmotionClassifier(tiny_model).features
    audio = [load_audio(p, cfg.sample_rate_hz) for p in sorted(FIXTURES.rglob("*.flac"))]
    loud = eval_windows(audio, cfg)
    soft = eval_windows([a * np.float32(10 ** (-30 / 20)) for a in audio], cfg,
                        GateConfig(min_level_db=GateConfig.min_level_db - 30))
    assert np.array_equal(loud.speech, soft.speech) and loud.speech.any()
    np.testing.assert_allclose(loud.windows, soft.windows, atol=0.01)  # int8 input steps are 0.035
    res = evaluate_command([str(FIXTURES)], tiny_model, condition=InputCondition(gain_db=-30.0), log=lambda *_: None)
    assert res.window["n"] == int(loud.speech.sum()) and res.clip["n"] == len(audio)


def test_cv_rescored_at_a_lower_gain_keeps_the_plain_figures(tmp_path: Path) -> None:
    """``cv --rescore --gain-db -30`` scores the same fold models on quieter input into its own
    file; the 0 dB cv.json stays as it was, and gain_cmvn gives the same verdicts."""
    from training.pipeline import cross_validate, load_dataset

    cfg = FeatureConfig()
    clips, audio, _ = load_dataset([str(FIXTURES)], cfg, log=lambda *_: None)
    recipe = Recipe(epochs=1, copies=0, crops_per_clip=1, batch_size=8, widths=(4, 8, 8, 8), seed=3, threads=2)
    plain = cross_validate(clips, audio, cfg, recipe, 2, tmp_path, None, log=lambda *_: None)
    before = (tmp_path / "cv.json").read_text()
    quiet = cross_validate(clips, audio, cfg, recipe, 2, tmp_path, None, log=lambda *_: None, rescore=True,
                           condition=InputCondition(gain_db=-30.0))
    assert (tmp_path / "cv.json").read_text() == before
    assert json.loads((tmp_path / "cv-gain-30dB.json").read_text())["input_condition"]["gain_db"] == -30.0
    assert (tmp_path / "report-gain-30dB" / "confusion_clip.png").stat().st_size > 0
    assert quiet["pooled_window"]["n"] == plain["pooled_window"]["n"] > 0
    assert quiet["pooled_clip"] == plain["pooled_clip"]
    with pytest.raises(TrainingError, match="--rescore"):
        cross_validate(clips, audio, cfg, recipe, 2, tmp_path, None, log=lambda *_: None,
                       condition=InputCondition(snr_db=10.0))
    cross_validate(clips, audio, cfg, recipe, 2, tmp_path, None, log=lambda *_: None, rescore=True,
                   condition=InputCondition(snr_db=10.0, gain_db=-30.0))
    noisy = json.loads((tmp_path / "cv-snr10dB-gain-30dB.json").read_text())
    assert noisy["input_condition"] == {"gain_db": -30.0, "snr_db": 10.0, "codec": None}
    assert "10 dB SNR" in noisy["protocol"]
    cross_validate(clips, audio, cfg, recipe, 2, tmp_path, None, log=lambda *_: None, rescore=True,
                   condition=InputCondition(codec="opus"))
    coded = json.loads((tmp_path / "cv-opus.json").read_text())
    assert coded["input_condition"]["codec"] == "opus" and "through opus" in coded["protocol"]
    assert coded["pooled_window"]["n"] == plain["pooled_window"]["n"]
    assert (tmp_path / "cv.json").read_text() == before


def test_the_same_command_trains_the_same_model(tmp_path: Path) -> None:
    """Seeds are fixed: a second run gives the same model, judged by its int8 and float outputs
    on every fixture window (the .tflite bytes of two runs in one process differ: Keras numbers
    its layers per process)."""
    from ser_live.audio_io import load_audio
    from training.data import eval_windows
    from training.evaluate import FloatTFLite, predict_all

    recipe = Recipe(epochs=1, copies=1, crops_per_clip=1, batch_size=8, widths=(4, 8, 8, 8), seed=5, threads=1)
    cfg = FeatureConfig()

    windows = eval_windows([load_audio(p, cfg.sample_rate_hz) for p in sorted(FIXTURES.rglob("*.flac"))], cfg).windows
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run / "m"
        train_command([str(FIXTURES)], out, cfg, recipe, actors="1-2", cache_dir=None, log=lambda *_: None)
        outputs.append([predict_all(EmotionClassifier(out.with_name("m.tflite")), windows),
                        predict_all(FloatTFLite(out.with_name("m.float.tflite")), windows)])
    assert len(windows) > 50 and np.ptp(outputs[0][1], axis=0).max() > 1e-3  # outputs that vary with the input
    assert np.array_equal(outputs[0][0], outputs[1][0]) and np.array_equal(outputs[0][1], outputs[1][1])


@pytest.mark.timeout(900)  # four train commands of two folds and a final model each
def test_three_corpora_parallel_folds_calibration_and_the_locked_test(tmp_path: Path) -> None:
    """The whole ``train --cv --jobs 2`` path on real RAVDESS, TESS and SAVEE clips: folds and the
    final model trained in two processes, the temperature fitted on the folds' held-out windows
    and stored in the model, the locked speakers never trained on and scored once at the end."""
    fixtures = FIXTURES.parent
    recipe = Recipe(epochs=1, copies=1, crops_per_clip=1, batch_size=8, widths=(4, 8, 8, 8), seed=3, threads=1)
    out = tmp_path / "three"
    meta = train_command([str(fixtures / "ravdess"), str(fixtures / "tess"), str(fixtures / "savee")], out,
                         FeatureConfig(), recipe, actors="1-2", cv_folds=2, cache_dir=tmp_path / "cache",
                         log=lambda *_: None, parallel=2, locked=frozenset({"savee:KL"}), cv_dir=tmp_path / "cv")
    card = meta["card"]
    assert card["training_data"]["locked_test_speakers_left_out"] == ["savee:KL"]
    assert card["training_data"]["clips"] == 16 + 2 + 1
    assert card["training_data"]["label_sets"]["tess"] == ["fearful", "surprised"]
    assert card["locked_test"]["speakers"] == ["savee:KL"] and card["locked_test"]["clip"]["n"] == 2
    assert set(card["speaker_independent_cv"]["per_corpus"]) == {"ravdess", "savee", "tess"}
    temperature = card["calibration"]["temperature"]
    assert 0.1 < temperature < 8 and EmotionClassifier(out.with_name("three.tflite")).metadata.calibration.temperature \
        == temperature
    assert {"ece_window", "ece_clip"} <= set(card["calibration"])
    assert (tmp_path / "cv" / "oof.npz").exists() and (tmp_path / "cv" / "reliability.png").stat().st_size > 0
    assert (tmp_path / "cv" / "coverage.png").stat().st_size > 0
    assert (tmp_path / "cv" / "fold2" / "model.tflite").exists()

    # The same command again reuses the finished CV's fold models (as it does the feature cache);
    # another seed is another recipe and trains its own.
    def again(seed: int) -> tuple[list[str], float]:
        lines: list[str] = []
        train_command([str(fixtures / "ravdess"), str(fixtures / "tess"), str(fixtures / "savee")], out,
                      FeatureConfig(), replace(recipe, seed=seed), actors="1-2", cv_folds=2,
                      cache_dir=tmp_path / "cache", log=lines.append, parallel=2,
                      locked=frozenset({"savee:KL"}), cv_dir=tmp_path / "cv")
        return lines, (tmp_path / "cv" / "fold2" / "model.tflite").stat().st_mtime_ns

    trained_at = (tmp_path / "cv" / "fold2" / "model.tflite").stat().st_mtime_ns
    lines, mtime = again(3)
    assert any(line.startswith("reusing the 2 fold models") for line in lines) and mtime == trained_at
    assert json.loads(out.with_name("three.json").read_text())["card"]["calibration"]["temperature"] == temperature
    lines, mtime = again(4)
    assert not any(line.startswith("reusing") for line in lines) and mtime != trained_at

    # That model and its CV teach a student (--distill): fold k learns from fold k, the final model
    # from the final one, and the cards say so; a fold model cannot teach the final model, since the
    # locked speaker is not among the voices its card says it never heard. With a process for each
    # job, the folds run niced beside the final model.
    lines = []

    def student(*teachers: Path) -> dict:
        return train_command([str(fixtures / "ravdess"), str(fixtures / "tess"), str(fixtures / "savee")],
                             tmp_path / "student", FeatureConfig(), replace(recipe, distill_weight=0.5), actors="1-2",
                             cv_folds=2, cache_dir=tmp_path / "cache", log=lines.append, parallel=3,
                             locked=frozenset({"savee:KL"}), cv_dir=tmp_path / "cv-student", teachers=teachers,
                             teacher_cvs=[tmp_path / "cv"])

    with pytest.raises(TrainingError, match="may have trained on savee:KL"):
        student(tmp_path / "cv" / "fold1" / "model.tflite")
    with pytest.raises(TrainingError, match="give each --teacher its CV"):
        student(out.with_name("three.tflite"), out.with_name("three.tflite"))
    card = student(out.with_name("three.tflite"))["card"]
    assert [t["file"] for t in card["teachers"]] == ["three.tflite"] and card["recipe"]["distill_weight"] == 0.5
    assert card["teachers"][0]["recipe"]["seed"] == 4 and card["locked_test"]["clip"]["n"] == 2
    for k in (1, 2):
        fold = json.loads((tmp_path / "cv-student" / f"fold{k}" / "model.json").read_text())["card"]
        assert fold["teachers"] == [str(tmp_path / "cv" / f"fold{k}" / "model.float.tflite")]
    trained = [line for line in lines if " trained in " in line]
    assert len(trained) == 3 and all(line.endswith("(niced)") == line.startswith("fold") for line in trained)


def test_widths_on_the_command_line_set_the_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    from training.__main__ import _make_recipe, build_parser

    args = build_parser().parse_args(["cv", "--data", "x", "--widths", "24,48,96,128"])
    assert _make_recipe(args).widths == (24, 48, 96, 128)
    assert _make_recipe(build_parser().parse_args(["cv", "--data", "x"])).widths == Recipe().widths
    for bad in ("16,x", "8", "16,0"):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["cv", "--data", "x", "--widths", bad])
        assert exited.value.code == 2 and "--widths" in capsys.readouterr().err
