"""``python -m training compare``: CV runs side by side, and each recipe's mean over its seeds.

One 3-fold speaker CV moves 3-7 points per corpus from one seed to the next (docs/training.md),
so a recipe decision compares means over seeds on the same folds, never two single runs. The
runs of a group must share the recipe (seed and threads aside), and all runs the folds and the
input condition: otherwise their figures do not answer the same question and this is an error.

A group of two or more runs also gets an ensemble row: the runs' held-out window probabilities
(``oof.npz``) averaged, then scored like one run. What it gains over the mean is what averaging
away seed-to-seed variance can buy (by distillation or a bigger model); what it leaves is not
variance. Every row with held-out probabilities also gets its cross-fitted calibration error
(``calibration.cross_fitted_ece``), which the recipe rules weigh beside accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from training import TrainingError
from training.calibration import OutOfFold, clip_mean, cross_fitted_ece
from training.conditions import AS_RECORDED
from training.evaluate import metrics
from training.pipeline import foreign_verdicts, per_corpus
from training.train import Recipe

NOT_THE_RECIPE = ("seed", "threads")  # what may differ between the runs of one recipe


@dataclass(frozen=True)
class RunFigures:
    """One CV run's clip figures: pooled, each corpus's accuracy, and verdicts outside a corpus's labels."""

    name: str
    seed: int
    accuracy: float
    uar: float
    corpus_accuracy: dict[str, float]
    foreign_verdicts: int
    ece: tuple[float, float] | None = None  # cross-fitted ECE, window and clip (None: no oof.npz)


def load_cv(cv_dir: Path) -> dict:
    path = Path(cv_dir) / "cv.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{path}: no cv.json there (run cv or train --cv first)") from None
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path}: not a cv.json ({exc.msg})") from None


def run_figures(name: str, seed: int, pooled_clip: dict, corpora: dict,
                ece: tuple[float, float] | None = None) -> RunFigures:
    """From a CV's ``pooled_clip`` and ``per_corpus`` figures."""
    return RunFigures(name, seed, pooled_clip["accuracy"], pooled_clip["uar"],
                      {corpus: figures["clip"]["accuracy"] for corpus, figures in corpora.items()},
                      sum(sum(foreign_verdicts(figures).values()) for figures in corpora.values()), ece)


def _ece(cv_dir: Path) -> tuple[float, float] | None:
    path = Path(cv_dir) / "oof.npz"
    return cross_fitted_ece(OutOfFold.load(path)) if path.is_file() else None


def _setup(summary: dict) -> tuple:
    """Folds and input condition; a run from before a condition existed was scored without it."""
    folds = tuple(tuple(f["held_out"]) for f in summary["folds"])
    return folds, json.dumps({**AS_RECORDED.to_dict(), **summary.get("input_condition", {})}, sort_keys=True)


def _recipe(summary: dict) -> dict:
    return {k: v for k, v in Recipe.stored(summary["recipe"]).items() if k not in NOT_THE_RECIPE}


def compare(groups: dict[str, list[Path]]) -> dict[str, list[RunFigures]]:
    """Each group's runs, checked to be one recipe on the same folds and input as every other run."""
    setups, out = set(), {}
    for group, dirs in groups.items():
        summaries = [(str(d), load_cv(d)) for d in dirs]
        recipes = {json.dumps(_recipe(s), sort_keys=True) for _, s in summaries}
        if len(recipes) > 1:
            raise TrainingError(f"group {group!r}: its runs differ in more than the seed; "
                                "a mean over them is not one recipe's")
        setups |= {_setup(s) for _, s in summaries}
        out[group] = [run_figures(name, s["recipe"]["seed"], s["pooled_clip"], s["per_corpus"], _ece(Path(name)))
                      for name, s in summaries]
    if len(setups) > 1:
        raise TrainingError("the runs were not held out on the same folds under the same input condition")
    return out


def ensemble_figures(group: str, dirs: list[Path]) -> RunFigures:
    """The runs' out-of-fold window probabilities averaged and scored as one CV run."""
    runs = []
    for d in dirs:
        path = Path(d) / "oof.npz"
        if not path.is_file():
            raise TrainingError(f"{path}: no out-of-fold predictions there (a cv.json alone cannot be ensembled)")
        runs.append(OutOfFold.load(path))
    first = runs[0]
    if any(not (np.array_equal(r.window_clip, first.window_clip) and np.array_equal(r.clip_labels, first.clip_labels))
           for r in runs[1:]):
        raise TrainingError(f"group {group!r}: the runs' held-out windows differ, "
                            "so their probabilities cannot be averaged")
    mean = replace(first, window_probs=np.mean([r.window_probs for r in runs], axis=0))
    pred = clip_mean(mean.window_probs, mean.window_clip, mean.window_speech, len(mean.clip_labels)).argmax(axis=1)
    return run_figures(f"{group}: ensemble of {len(runs)}", -1, metrics(mean.clip_labels, pred), per_corpus(mean),
                       cross_fitted_ece(mean))


def mean_figures(group: str, runs: list[RunFigures]) -> RunFigures:
    n = len(runs)
    corpora = runs[0].corpus_accuracy
    eces = [r.ece for r in runs if r.ece is not None]
    return RunFigures(f"{group}: mean of {n} seed{'s' if n > 1 else ''}", -1, sum(r.accuracy for r in runs) / n,
                      sum(r.uar for r in runs) / n,
                      {c: sum(r.corpus_accuracy[c] for r in runs) / n for c in corpora},
                      round(sum(r.foreign_verdicts for r in runs) / n),
                      (float(np.mean([e[0] for e in eces])), float(np.mean([e[1] for e in eces])))
                      if len(eces) == n else None)


def _spread(values: list[float]) -> str:
    return f"{max(values) - min(values):.3f}"


def table(groups: dict[str, list[RunFigures]], ensembles: dict[str, RunFigures] | None = None) -> str:
    """A Markdown table: every run, then each group's mean and, over two or more seeds, its spread,
    then the ``ensembles`` (``ensemble_figures``) given."""
    corpora = sorted(next(iter(groups.values()))[0].corpus_accuracy)
    head = ["run", "seed", "clip acc", "clip UAR", *corpora, "verdicts outside a corpus's labels",
            "ECE window / clip (cross-fitted)"]
    rows = [head, ["---"] * len(head)]

    def row(r: RunFigures, seed: str) -> list[str]:
        return [r.name, seed, f"{r.accuracy:.3f}", f"{r.uar:.3f}",
                *(f"{r.corpus_accuracy[c]:.3f}" for c in corpora), str(r.foreign_verdicts),
                "n/a" if r.ece is None else f"{r.ece[0]:.3f} / {r.ece[1]:.3f}"]

    for runs in groups.values():
        rows += [row(r, str(r.seed)) for r in runs]
    for group, runs in groups.items():
        seeds = ", ".join(str(r.seed) for r in runs)
        rows.append(row(mean_figures(group, runs), seeds))
        if len(runs) > 1:
            rows.append([f"{group}: spread (max - min)", "", _spread([r.accuracy for r in runs]),
                         _spread([r.uar for r in runs]),
                         *(_spread([r.corpus_accuracy[c] for r in runs]) for c in corpora),
                         str(max(r.foreign_verdicts for r in runs) - min(r.foreign_verdicts for r in runs)), ""])
    for group, ensemble in (ensembles or {}).items():
        rows.append(row(ensemble, ", ".join(str(r.seed) for r in groups[group])))
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def parse_group(text: str) -> tuple[str, list[Path]]:
    """``masked=runs/cv-a,runs/cv-b`` -> ("masked", [runs/cv-a, runs/cv-b])."""
    name, sep, dirs = text.partition("=")
    if not sep or not name or not dirs:
        raise TrainingError(f"expected NAME=CV_DIR[,CV_DIR...], got {text!r}")
    return name, [Path(d) for d in dirs.split(",") if d]
