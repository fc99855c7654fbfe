"""The seed projects' recipes, scored on a random clip split and on the speaker split.

- ``mlp``: per-clip means of 40 MFCC + 12 chroma + 128 mel bands, scaled, an MLP;
- ``svm``: per-clip means of 40 MFCC + 12 chroma + 7 spectral contrast + 6 tonnetz + ZCR + RMS,
  scaled, an RBF SVM.

Both are whole-clip statistics (the live app cannot have them); they are here to show how much
a random split (same actors on both sides) flatters a recipe. Tonnetz is computed from the
STFT chroma rather than from a harmonic-separated CQT, to keep this to a minute on two cores.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ser_live.config import FeatureConfig
from training.data import label_indices
from training.datasets import speaker_folds
from training.evaluate import metrics


def clip_statistics(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(mlp features, svm features) of one clip."""
    import librosa

    stft = np.abs(librosa.stft(audio, n_fft=1024, hop_length=256))
    mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=40).mean(axis=1)
    chroma_frames = librosa.feature.chroma_stft(S=stft**2, sr=sr)
    chroma = chroma_frames.mean(axis=1)
    mel = librosa.feature.melspectrogram(S=stft**2, sr=sr, n_mels=128).mean(axis=1)
    contrast = librosa.feature.spectral_contrast(S=stft, sr=sr).mean(axis=1)
    tonnetz = librosa.feature.tonnetz(chroma=chroma_frames, sr=sr).mean(axis=1)
    zcr = librosa.feature.zero_crossing_rate(audio).mean(axis=1)
    rms = librosa.feature.rms(S=stft, frame_length=1024).mean(axis=1)
    return np.concatenate([mfcc, chroma, mel]), np.concatenate([mfcc, chroma, contrast, tonnetz, zcr, rms])


def _features(clips, audio, sr, cache_dir: Path | None):
    key = hashlib.sha256("|".join(f"{c.path}:{c.label}" for c in clips).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"baseline-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        data = np.load(path)
        return data["a"], data["b"]
    pairs = [clip_statistics(a, sr) for a in audio]
    a, b = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, a=a, b=b)
    return a, b


def _classifier(kind: str, seed: int):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(300,), alpha=0.01, batch_size=64, learning_rate="adaptive",
                            max_iter=500, random_state=seed)
    else:
        clf = SVC(kernel="rbf", C=10.0, gamma="scale", random_state=seed)
    return make_pipeline(StandardScaler(), clf)


def score_folds(x: np.ndarray, y: np.ndarray, folds: list[np.ndarray], kind: str, seed: int) -> dict:
    """Pooled out-of-fold predictions over the given test-index folds."""
    pred = np.full(len(y), -1)
    per_fold = []
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        model = _classifier(kind, seed).fit(x[train], y[train])
        pred[test] = model.predict(x[test])
        per_fold.append(float(np.mean(pred[test] == y[test])))
    covered = pred >= 0
    return {**metrics(y[covered], pred[covered]), "per_fold_accuracy": per_fold}


def baselines_command(data, cfg: FeatureConfig, actors, drop_labels, n_folds: int, seed: int, out: Path,
                      cache_dir: Path | None, log=print) -> dict:
    from training.datasets import LOCKED_TEST_SPEAKERS
    from training.pipeline import load_dataset, split_locked

    start = time.time()
    clips, audio, _ = load_dataset(data, cfg, actors, drop_labels, log=log)
    clips, audio, _, _ = split_locked(clips, audio, LOCKED_TEST_SPEAKERS, log)  # the folds `cv` and `train` use
    y = label_indices(clips)
    feats = dict(zip(("mlp", "svm"), _features(clips, audio, cfg.sample_rate_hz, cache_dir), strict=True))
    groups = speaker_folds([c.speaker for c in clips], n_folds)
    speaker_split = [np.asarray([i for i, c in enumerate(clips) if c.speaker in set(g)]) for g in groups]
    order = np.random.default_rng(seed).permutation(len(clips))
    random_split = [np.sort(order[k::n_folds]) for k in range(n_folds)]
    results = {"protocol": f"{n_folds}-fold, pooled out-of-fold clip predictions; speaker split = whole "
                           "speakers per fold (same folds as `cv`), random split = clips dealt at random",
               "clips": len(clips), "speakers": len({c.speaker for c in clips})}
    for kind, label in (("mlp", "MFCC+chroma+mel means, MLP"), ("svm", "MFCC+chroma+contrast+tonnetz+ZCR+RMS, SVM")):
        results[kind] = {"recipe": label,
                         "random_split": score_folds(feats[kind], y, random_split, kind, seed),
                         "speaker_split": score_folds(feats[kind], y, speaker_split, kind, seed)}
        r, s = results[kind]["random_split"], results[kind]["speaker_split"]
        log(f"{label}: random clip split acc {r['accuracy']:.3f} UAR {r['uar']:.3f} F1 {r['macro_f1']:.3f} | "
            f"speaker split acc {s['accuracy']:.3f} UAR {s['uar']:.3f} F1 {s['macro_f1']:.3f}")
    results["seconds"] = round(time.time() - start)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {out}")
    return results
