"""Honest confidence: temperature fitted on held-out speakers, expected calibration error, plots.

The temperature is fitted on out-of-fold windows (every window scored by the fold model that
never heard its speaker) with ``ser_live.model.Calibration.apply``, the very function the app
runs, and written into the model's JSON. Its own quality is measured cross-fitted: fold k's
windows are scored with the temperature fitted on the other folds, so no figure has seen the
windows it is measured on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ser_live.config import EMOTIONS
from ser_live.model import PROB_FLOOR, Calibration, ModelMetadata

ECE_BINS = 15  # equal-width confidence bins, the usual choice (Guo et al. 2017)
LOG_T_RANGE = (-2.0, 2.0)  # temperatures 0.14-7.4: far wider than any CNN here needs


@dataclass
class OutOfFold:
    """Held-out predictions of a speaker CV: raw (uncalibrated) int8 probabilities."""

    window_probs: np.ndarray  # (windows, classes), every window of every held-out clip
    window_clip: np.ndarray  # (windows,) index into the clip arrays
    window_speech: np.ndarray  # (windows,) bool, the speech detector passed it
    clip_labels: np.ndarray  # (clips,)
    clip_fold: np.ndarray  # (clips,) 1-based fold that held the clip's speaker out
    clip_corpus: np.ndarray  # (clips,) str

    def save(self, path: Path) -> None:
        np.savez(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> OutOfFold:
        with np.load(path) as data:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def speech_windows(self, folds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and labels of the speech windows (of clips in ``folds``, if given)."""
        keep = self.window_speech.copy()
        if folds is not None:
            keep &= np.isin(self.clip_fold[self.window_clip], folds)
        return self.window_probs[keep], self.clip_labels[self.window_clip[keep]]


def clip_mean(probs: np.ndarray, window_clip: np.ndarray, window_speech: np.ndarray, n_clips: int) -> np.ndarray:
    """A clip's verdict as ``analyze`` gives it: the mean of its speech windows (all, if none is speech)."""
    out = np.zeros((n_clips, probs.shape[1]), dtype=np.float64)
    for ci in range(n_clips):
        mine = window_clip == ci
        use = mine & window_speech if (mine & window_speech).any() else mine
        out[ci] = probs[use].mean(axis=0)
    return out


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12))))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of ``labels``."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda log_t: nll(Calibration(float(np.exp(log_t))).apply(probs), labels),
                          bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top class: sum over bins of |accuracy - confidence| x share."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(total)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[tuple[float, float, int]]:
    """Per non-empty bin: (mean confidence, accuracy, count)."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return [(float(conf[which == b].mean()), float(right[which == b].mean()), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]


def coverage_curve(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> list[tuple[float, float, float]]:
    """Per threshold: (threshold, share of verdicts at or above it, their accuracy)."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    out = []
    for t in thresholds:
        kept = conf >= t
        out.append((float(t), float(kept.mean()), float(right[kept].mean()) if kept.any() else float("nan")))
    return out


def clip_temperature_check(clip_probs: np.ndarray, labels: np.ndarray, clip_fold: np.ndarray) -> dict:
    """A second temperature on the clip verdicts, fitted and measured cross-fitted like the window
    one. Reported, not applied: when one fold holds out a corpus the others never saw, the folds
    want opposite corrections and it made clip ECE and NLL worse (docs/training.md)."""
    tried = clip_probs.copy()
    per_fold = {}
    for k in np.unique(clip_fold):
        others = clip_fold != k
        t_k = fit_temperature(clip_probs[others], labels[others])
        per_fold[int(k)] = round(t_k, 4)
        tried[~others] = Calibration(t_k).apply(clip_probs[~others])
    return {"cross_fitted_temperatures": per_fold,
            "ece_clip": {"without": ece(clip_probs, labels), "with": ece(tried, labels)},
            "nll_clip": {"without": nll(clip_probs, labels), "with": nll(tried, labels)}}


def fit_class_bias(probs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Temperature and one bias per class (mean zero) that minimize the negative log-likelihood:
    bias-corrected temperature scaling (Alexandari et al. 2020), the usual post-hoc remedy for a
    class given too often."""
    from scipy.optimize import minimize

    def loss(x: np.ndarray) -> float:
        return nll(with_class_bias(probs, float(np.exp(x[0])), np.concatenate([[0.0], x[1:]])), labels)

    res = minimize(loss, np.zeros(probs.shape[1]), method="L-BFGS-B")
    bias = np.concatenate([[0.0], res.x[1:]])
    return float(np.exp(res.x[0])), bias - bias.mean()


def with_class_bias(probs: np.ndarray, temperature: float, bias: np.ndarray) -> np.ndarray:
    """``log p / temperature + bias``, renormalized. ``Calibration.apply`` is the temperature alone
    in float32; this stays in float64, which the optimizer's finite differences need."""
    z = np.log(np.maximum(probs, PROB_FLOOR).astype(np.float64)) / temperature + bias
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def class_bias_check(oof: OutOfFold, calibrated: np.ndarray) -> dict:
    """Class biases beside the temperature, fitted and measured cross-fitted like it and compared
    with ``calibrated`` (the temperature alone, cross-fitted). Reported, not applied: unlike a
    temperature they change verdicts, and where one fold holds out a corpus the others never saw,
    the folds want opposite biases (docs/training.md)."""
    from training.evaluate import metrics

    folds = np.unique(oof.clip_fold)
    tried = oof.window_probs.astype(np.float64)
    per_fold = {}
    for k in folds:
        t_k, bias = fit_class_bias(*oof.speech_windows(folds[folds != k]))
        per_fold[int(k)] = {"temperature": round(t_k, 4),
                            "bias": {name: round(float(b), 3) for name, b in zip(EMOTIONS, bias, strict=True)}}
        mine = oof.clip_fold[oof.window_clip] == k
        tried[mine] = with_class_bias(oof.window_probs[mine], t_k, bias)
    speech, n_clips, labels = oof.window_speech, len(oof.clip_labels), oof.clip_labels
    w_labels = labels[oof.window_clip[speech]]
    out: dict = {"cross_fitted": per_fold}
    clips = {}
    for name, windows in (("without", calibrated), ("with", tried)):
        clips[name] = clip_mean(windows, oof.window_clip, speech, n_clips)
        verdicts = clips[name].argmax(axis=1)
        out[name] = {"ece_window": ece(windows[speech], w_labels), "ece_clip": ece(clips[name], labels),
                     "nll_clip": nll(clips[name], labels),
                     **{f"clip_{key}": value for key, value in metrics(labels, verdicts).items() if key != "n"},
                     "clip_accuracy_per_corpus": {
                         str(c): float((verdicts == labels)[oof.clip_corpus == c].mean())
                         for c in np.unique(oof.clip_corpus)}}
    return out


Curves = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # level -> (raw, calibrated, labels)


def cross_fitted(oof: OutOfFold) -> tuple[np.ndarray, dict[int, float]]:
    """Every window calibrated with the temperature fitted on the other folds' speech windows (so
    no figure has seen the windows it is measured on), and those temperatures by fold."""
    folds = np.unique(oof.clip_fold)
    calibrated = oof.window_probs.copy()
    per_fold_t = {}
    for k in folds:
        t_k = fit_temperature(*oof.speech_windows(folds[folds != k]))
        per_fold_t[int(k)] = round(t_k, 4)
        mine = oof.clip_fold[oof.window_clip] == k
        calibrated[mine] = Calibration(t_k).apply(oof.window_probs[mine])
    return calibrated, per_fold_t


def cross_fitted_ece(oof: OutOfFold) -> tuple[float, float]:
    """Expected calibration error after the cross-fitted temperature: speech windows, and clips
    (the mean of their speech windows, as ``analyze`` gives them)."""
    calibrated, _ = cross_fitted(oof)
    speech = oof.window_speech
    clips = clip_mean(calibrated, oof.window_clip, speech, len(oof.clip_labels))
    return ece(calibrated[speech], oof.clip_labels[oof.window_clip[speech]]), ece(clips, oof.clip_labels)


def calibration_summary(oof: OutOfFold, uncertain_below: float) -> tuple[dict, Curves]:
    """Temperature on all out-of-fold speech windows; cross-fitted ECE before and after it, and
    the (raw, calibrated, labels) the plots are drawn from."""
    probs, labels = oof.speech_windows()
    temperature = fit_temperature(probs, labels)
    folds = np.unique(oof.clip_fold)
    calibrated, per_fold_t = cross_fitted(oof)
    n_clips = len(oof.clip_labels)
    raw_clip = clip_mean(oof.window_probs, oof.window_clip, oof.window_speech, n_clips)
    cal_clip = clip_mean(calibrated, oof.window_clip, oof.window_speech, n_clips)
    speech = oof.window_speech
    w_labels = oof.clip_labels[oof.window_clip[speech]]
    summary = {
        "temperature": round(temperature, 4),
        "fitted_on": f"{int(speech.sum())} out-of-fold speech windows ({len(folds)}-fold speaker CV)",
        "cross_fitted_temperatures": per_fold_t,
        "ece_window": {"raw": ece(oof.window_probs[speech], w_labels), "calibrated": ece(calibrated[speech], w_labels)},
        "ece_clip": {"raw": ece(raw_clip, oof.clip_labels), "calibrated": ece(cal_clip, oof.clip_labels)},
        "nll_window": {"raw": nll(oof.window_probs[speech], w_labels), "calibrated": nll(calibrated[speech], w_labels)},
        "uncertain_below": uncertain_below,
    }
    for level, p, y in (("window", calibrated[speech], w_labels), ("clip", cal_clip, oof.clip_labels)):
        conf = p.max(axis=1)
        sure = conf >= uncertain_below
        summary[f"confident_{level}"] = {
            "share": float(sure.mean()),
            "accuracy": float((p.argmax(axis=1) == y)[sure].mean()) if sure.any() else None,
            "accuracy_uncertain": float((p.argmax(axis=1) == y)[~sure].mean()) if (~sure).any() else None,
        }
    # one temperature for every voice: where held-out corpora are too sure and others too shy,
    # it cannot fix both, and only this breakdown shows it
    summary["clip_per_corpus"] = {}
    for corpus in np.unique(oof.clip_corpus):
        mine = oof.clip_corpus == corpus
        p, y = cal_clip[mine], oof.clip_labels[mine]
        summary["clip_per_corpus"][str(corpus)] = {
            "clips": int(mine.sum()), "accuracy": float((p.argmax(axis=1) == y).mean()),
            "mean_confidence": float(p.max(axis=1).mean()), "ece": ece(p, y)}
    summary["clip_temperature_tried"] = clip_temperature_check(cal_clip, oof.clip_labels, oof.clip_fold)
    summary["class_bias_tried"] = class_bias_check(oof, calibrated)
    curves = {"window": (oof.window_probs[speech], calibrated[speech], w_labels),
              "clip": (raw_clip, cal_clip, oof.clip_labels)}
    return summary, curves


def plot_reliability(curves: Curves, path: Path, title: str) -> None:
    """Reliability diagrams (raw and calibrated) per level, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.8))
    for ax, (level, (raw, cal, labels)) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect")
        for probs, name, colour in ((raw, "raw", "tab:red"), (cal, "calibrated", "tab:blue")):
            pts = reliability(probs, labels)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colour,
                    label=f"{name} (ECE {ece(probs, labels):.3f})")
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{level}s of held-out speakers")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_coverage(curves: Curves, path: Path, title: str,
                  uncertain_below: float) -> None:
    """Accuracy of the verdicts at or above a confidence threshold against the share kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.6))
    thresholds = np.linspace(0, 0.95, 96)
    for (level, (_, cal, labels)), colour in zip(curves.items(), ("tab:blue", "tab:green"), strict=False):
        pts = coverage_curve(cal, labels, thresholds)
        ax.plot([p[1] for p in pts], [p[2] for p in pts], color=colour, label=f"{level}s")
        at = coverage_curve(cal, labels, np.asarray([uncertain_below]))[0]
        ax.plot([at[1]], [at[2]], marker="o", color=colour)
        ax.annotate(f"confidence >= {uncertain_below:g}", (at[1], at[2]), textcoords="offset points",
                    xytext=(-10, 8), ha="right", fontsize=8)
    ax.set_xlabel("coverage (share of verdicts not called uncertain)")
    ax.set_ylabel("accuracy of those verdicts")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_calibration(model_json: Path, temperature: float, uncertain_below: float, fitted_on: str) -> ModelMetadata:
    """Store the calibration in a model's JSON (the runtime applies it from there)."""
    meta = ModelMetadata.load(model_json)
    meta = replace(meta, calibration=Calibration(temperature, uncertain_below, fitted_on))
    meta.save(model_json)
    return meta
