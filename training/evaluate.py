"""Metrics per window and per clip, int8-vs-float agreement, confusion-matrix PNG."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser_live.config import EMOTIONS
from ser_live.model import EmotionClassifier
from training.calibration import clip_mean
from training.data import EvalWindows


class FloatTFLite:
    """The float32 twin of an int8 model (``<name>.float.tflite``), for agreement checks."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        from ser_live.model import _interpreter_class

        self.interpreter = _interpreter_class()(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]["index"]
        self.out = self.interpreter.get_output_details()[0]["index"]

    def predict(self, window: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.inp, window[None, :, :, None].astype(np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.out)[0].astype(np.float32)


class MeanOf:
    """Several predictors as one, their probabilities averaged: an ensemble teacher.

    Seeds of one recipe disagree by 3-7 points on a corpus; their mean averages that variance away
    (``compare``'s ensemble row shows what that is worth), and distilled, it costs the student's hop
    nothing. The mean of one predictor is that predictor's output, to the bit."""

    def __init__(self, members: list) -> None:
        self.members = members

    def predict(self, window: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(window) for m in self.members], axis=0, dtype=np.float32)


def float_path_for(model_path: Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".float.tflite")


def predict_all(predictor, windows: np.ndarray) -> np.ndarray:
    return np.stack([predictor.predict(w) for w in windows]) if len(windows) else np.zeros((0, len(EMOTIONS)))


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    # UAR: mean recall over the classes present (a corpus without calm can still be called calm;
    # balanced_accuracy_score gives the same figure but warns about that)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": float(recall_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=range(len(EMOTIONS)), zero_division=0)),
    }


DECIDED_MARGIN = 0.1  # a window the float model is decided on: its top two probabilities this far apart


@dataclass
class Evaluation:
    window: dict
    clip: dict
    agreement: float | None  # same top class, int8 vs float, over all windows
    no_speech_clips: int
    clip_true: np.ndarray
    clip_pred: np.ndarray
    window_true: np.ndarray
    window_pred: np.ndarray
    agreement_speech: float | None = None  # the same over the speech windows only (what the app shows)
    # the same over windows the float model is decided on: int8 rounding flips near-ties, where
    # the float model's own pick is a coin toss; a miss here would be a real quantization error
    agreement_decided: float | None = None
    window_probs: np.ndarray | None = None  # (all windows, classes) int8 model, as the app shows them

    def summary(self) -> dict:
        return {"window": self.window, "clip": self.clip, "int8_float_agreement": self.agreement,
                "int8_float_agreement_speech_windows": self.agreement_speech,
                "int8_float_agreement_decided_windows": self.agreement_decided,
                "clips_without_speech_window": self.no_speech_clips}


def evaluate_probs(int8_probs: np.ndarray, float_probs: np.ndarray | None, ev: EvalWindows,
                   clip_labels: np.ndarray) -> Evaluation:
    n_clips = len(clip_labels)
    w_true = clip_labels[ev.clip_index]
    w_pred = int8_probs.argmax(axis=1)
    speech = ev.speech
    c_pred = clip_mean(int8_probs, ev.clip_index, speech, n_clips).argmax(axis=1)
    fallbacks = n_clips - len(np.unique(ev.clip_index[speech]))  # clips judged on all their windows
    agreement = agreement_speech = agreement_decided = None
    if float_probs is not None:
        same = float_probs.argmax(axis=1) == w_pred
        agreement = float(np.mean(same))
        agreement_speech = float(np.mean(same[speech])) if speech.any() else agreement
        top2 = np.sort(float_probs, axis=1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] >= DECIDED_MARGIN
        agreement_decided = float(np.mean(same[decided])) if decided.any() else None
    window = metrics(w_true[speech], w_pred[speech]) if speech.any() else metrics(w_true, w_pred)
    window["speech_windows"] = int(speech.sum())
    window["all_windows"] = int(len(speech))
    return Evaluation(window, metrics(clip_labels, c_pred), agreement, fallbacks, clip_labels, c_pred,
                      w_true[speech], w_pred[speech], agreement_speech, agreement_decided, int8_probs)


def evaluate_model(model_path: Path, ev: EvalWindows, clip_labels: np.ndarray, threads: int = 1,
                   groups: np.ndarray | None = None) -> Evaluation:
    """``groups`` (one id per clip): a session-adapting model learns each group's voice from all
    of the group's clips (``EvalWindows.inputs``); else each clip's own."""
    clf = EmotionClassifier(model_path, num_threads=threads)
    windows = ev.inputs(clf.metadata.adaptation, groups)
    int8_probs = predict_all(clf, windows)
    fpath = float_path_for(model_path)
    float_probs = predict_all(FloatTFLite(fpath, threads), windows) if fpath.exists() else None
    return evaluate_probs(int8_probs, float_probs, ev, clip_labels)


def stream_by_speaker(model_path: Path, audio: list[np.ndarray], speakers: list[str], clip_labels: np.ndarray,
                      seed: int = 0) -> dict:
    """Each speaker's clips in a row (a seeded random order) through one live processor, as a
    user talking on would be heard: a session-adapting model carries what it learned from clip
    to clip. A clip's verdict is the mean of its speech windows; a clip without one is wrong."""
    from ser_live.processor import ProcessorSettings, StreamProcessor

    clf = EmotionClassifier(model_path)
    predicted = np.full(len(audio), -1)
    rng = np.random.default_rng(seed)
    for speaker in sorted(set(speakers)):
        processor = StreamProcessor(clf, ProcessorSettings(smoothing_s=0.0))
        for i in rng.permutation([k for k, s in enumerate(speakers) if s == speaker]):
            processor.reset()  # a new recording, the same voice
            probs = [list(r.probs.values()) for r in processor.push(audio[i]) + processor.flush() if r.probs]
            if probs:
                predicted[i] = int(np.argmax(np.mean(probs, axis=0)))
    return metrics(clip_labels, predicted)


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    from sklearn.metrics import classification_report

    return classification_report(y_true, y_pred, labels=list(range(len(EMOTIONS))), target_names=list(EMOTIONS),
                                 digits=3, zero_division=0)


def confusion_png(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(EMOTIONS))))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: Evaluation, report_dir: Path, title: str) -> None:
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    text = (f"{title}\n\nper clip\n{per_class_report(result.clip_true, result.clip_pred)}\n"
            f"per speech window\n{per_class_report(result.window_true, result.window_pred)}")
    (report_dir / "report.txt").write_text(text)
    confusion_png(result.clip_true, result.clip_pred, report_dir / "confusion_clip.png", f"{title} (per clip)")
    confusion_png(result.window_true, result.window_pred, report_dir / "confusion_window.png",
                  f"{title} (per window)")
