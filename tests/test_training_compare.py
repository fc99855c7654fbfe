"""``python -m training compare``: recipes judged on their mean over seeds, on the same folds only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from training.__main__ import main
from training.calibration import OutOfFold, cross_fitted_ece

FOLDS = [["ravdess:01", "savee:JK"], ["ravdess:02", "tess:OAF"]]
# four held-out clips of one speech window each: RAVDESS neutral, RAVDESS calm, SAVEE neutral twice
CLIP_LABELS = np.array([0, 1, 0, 0])


def _oof(neutral_vs_calm: list[float]) -> OutOfFold:
    """Each clip's window gives ``p`` to neutral and ``1 - p`` to calm."""
    probs = np.zeros((4, 8))
    probs[:, 0] = neutral_vs_calm
    probs[:, 1] = 1.0 - probs[:, 0]
    return OutOfFold(probs, np.arange(4), np.ones(4, dtype=bool), CLIP_LABELS, np.array([1, 1, 2, 2]),
                     np.array(["ravdess", "ravdess", "savee", "savee"]))


def _cv_dir(root: Path, name: str, seed: int, acc: float, calm_on_savee: int, mask: bool = True,
            folds: list[list[str]] = FOLDS, neutral_vs_calm: tuple[float, ...] = (0.5,) * 4) -> Path:
    """A cv.json as ``cv`` writes it, cut to the keys ``compare`` reads, and an ``oof.npz``."""
    corpus = {"ravdess": (acc + 0.2, 0), "savee": (acc, calm_on_savee)}
    summary = {
        "recipe": {"epochs": 100, "mask_labels": mask, "seed": seed, "threads": 1},
        "input_condition": {"gain_db": 0.0, "snr_db": None},
        "folds": [{"fold": k + 1, "held_out": held} for k, held in enumerate(folds)],
        "pooled_clip": {"n": 100, "accuracy": acc, "uar": acc + 0.01},
        "per_corpus": {c: {"clip": {"accuracy": a},
                           "clip_verdicts": {"neutral": 10, "calm": calm},
                           "labels": ["neutral", "calm"] if c == "ravdess" else ["neutral"]}
                       for c, (a, calm) in corpus.items()},
    }
    out = root / name
    out.mkdir()
    (out / "cv.json").write_text(json.dumps(summary))
    _oof(list(neutral_vs_calm)).save(out / "oof.npz")
    return out


def test_means_spread_and_ensemble_per_recipe(tmp_path, capsys):
    # seed 0 gets clips 0 and 2 wrong, seed 1 clips 0 and 1 (calm on a SAVEE clip: not its label);
    # averaged, clip 0 is calm (wrong) and the others right
    a0 = _cv_dir(tmp_path, "a0", 0, 0.40, 70, neutral_vs_calm=(0.6, 0.6, 0.4, 0.9))
    a1 = _cv_dir(tmp_path, "a1", 1, 0.46, 30, neutral_vs_calm=(0.3, 0.3, 0.9, 0.9))
    b0 = _cv_dir(tmp_path, "b0", 0, 0.44, 2, mask=False)
    assert main(["compare", f"masked={a0},{a1}", f"unmasked={b0}"]) == 0
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in capsys.readouterr().out.splitlines()]
    rows = {r[0]: r[1:] for r in cells}
    # seed, acc, UAR, ravdess, savee, verdicts outside a corpus's labels (calm on SAVEE), ECE
    assert rows["masked: mean of 2 seeds"][:6] == ["0, 1", "0.430", "0.440", "0.630", "0.430", "50"]
    assert rows["masked: spread (max - min)"] == ["", "0.060", "0.060", "0.060", "0.060", "40", ""]
    assert rows["unmasked: mean of 1 seed"][:6] == ["0", "0.440", "0.450", "0.640", "0.440", "2"]
    assert "unmasked: spread (max - min)" not in rows  # one seed has no spread
    # ensemble: 3 of 4 right; UAR over neutral (2 of 3) and calm (1 of 1); RAVDESS 1 of 2, SAVEE 2 of 2
    assert rows["masked: ensemble of 2"][:6] == ["0, 1", "0.750", "0.833", "0.500", "1.000", "0"]
    assert "unmasked: ensemble of 1" not in rows
    # cross-fitted calibration error, window / clip: each run's, their mean, and the ensemble's own
    first, second = (OutOfFold.load(d / "oof.npz") for d in (a0, a1))
    runs = [cross_fitted_ece(first), cross_fitted_ece(second)]
    mean = replace(first, window_probs=(first.window_probs + second.window_probs) / 2)
    expected = {str(a0): runs[0], "masked: mean of 2 seeds": tuple(np.mean(runs, axis=0)),
                "masked: ensemble of 2": cross_fitted_ece(mean)}
    for name, (window, clip) in expected.items():
        assert rows[name][-1] == f"{window:.3f} / {clip:.3f}"
    assert len({rows[name][-1] for name in expected}) == 3  # they differ: the table is not one figure


def test_a_run_without_held_out_probabilities_has_no_calibration_error(tmp_path, capsys):
    run = _cv_dir(tmp_path, "a0", 0, 0.40, 70)
    (run / "oof.npz").unlink()
    assert main(["compare", f"masked={run}"]) == 0
    rows = {r[0]: r[1:] for r in ([c.strip() for c in line.strip("|").split("|")]
                                  for line in capsys.readouterr().out.splitlines())}
    assert rows[str(run)][-1] == "n/a" and rows["masked: mean of 1 seed"][-1] == "n/a"


@pytest.mark.parametrize("why", ["recipe", "folds"])
def test_runs_that_answer_different_questions_are_refused(tmp_path, capsys, why):
    a0 = _cv_dir(tmp_path, "a0", 0, 0.40, 70)
    if why == "recipe":  # the unmasked run put among the masked seeds
        args = [f"masked={a0},{_cv_dir(tmp_path, 'b1', 1, 0.46, 2, mask=False)}"]
    else:
        args = [f"masked={a0}", f"other={_cv_dir(tmp_path, 'b0', 0, 0.4, 2, mask=False, folds=FOLDS[::-1])}"]
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert ("differ in more than the seed" if why == "recipe" else "same folds") in err


@pytest.mark.parametrize("arg", ["masked", "masked=", "=runs/x"])
def test_a_malformed_group_is_one_line(arg, capsys):
    assert main(["compare", arg]) == 2
    assert "expected NAME=CV_DIR" in capsys.readouterr().err


def test_a_folder_without_cv_json_is_one_line(tmp_path, capsys):
    assert main(["compare", f"masked={tmp_path}"]) == 2
    assert "no cv.json there" in capsys.readouterr().err


def test_an_ensemble_needs_every_runs_held_out_probabilities(tmp_path, capsys):
    a0, a1 = _cv_dir(tmp_path, "a0", 0, 0.40, 70), _cv_dir(tmp_path, "a1", 1, 0.46, 30)
    (a1 / "oof.npz").unlink()
    assert main(["compare", f"masked={a0},{a1}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a cv.json alone cannot be ensembled" in err


def test_a_run_from_before_an_option_existed_is_the_same_recipe_as_one_with_its_default(tmp_path, capsys):
    """cv.json files written before ``codec_share`` and the codec condition existed trained and
    scored without them: they group with today's runs at the defaults, not with other values."""
    old = _cv_dir(tmp_path, "old", 0, 0.40, 70)  # no codec_share in its recipe, no codec in its condition

    def today(name: str, seed: int, codec_share: float = 0.0, codec: str | None = None) -> Path:
        run = _cv_dir(tmp_path, name, seed, 0.46, 30)
        summary = json.loads((run / "cv.json").read_text())
        summary["recipe"]["codec_share"] = codec_share
        summary["input_condition"]["codec"] = codec
        (run / "cv.json").write_text(json.dumps(summary))
        return run

    assert main(["compare", f"shipped={old},{today('new', 1)}"]) == 0
    assert "shipped: mean of 2 seeds" in capsys.readouterr().out
    assert main(["compare", f"shipped={old},{today('codecs', 1, codec_share=0.3)}"]) == 2
    assert "differ in more than the seed" in capsys.readouterr().err
    assert main(["compare", f"shipped={old}", f"opus={today('opus', 1, codec='opus')}"]) == 2
    assert "same input condition" in capsys.readouterr().err
