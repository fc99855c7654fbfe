"""What the commands do: load data, build features, cross-validate, train, export, evaluate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ser_live.config import EMOTIONS, FeatureConfig
from training import TrainingError
from training.conditions import AS_RECORDED, InputCondition
from training.data import build_bank, eval_windows, label_indices, load_clips, sample_windows
from training.datasets import Clip, DatasetSummary, actor_number, discover, speaker_folds
from training.evaluate import DECIDED_MARGIN, Evaluation, evaluate_model, metrics, write_report
from training.train import Recipe, describe_network, train_model

DEFAULT_CACHE = Path("runs/cache")


def parse_actors(spec: str | None) -> set[int] | None:
    """``"1-20"`` or ``"1,2,5-8"`` -> a set of RAVDESS actor numbers."""
    if not spec:
        return None
    actors: set[int] = set()
    try:
        for part in spec.split(","):
            if "-" in part:
                lo, hi = part.split("-")
                actors.update(range(int(lo), int(hi) + 1))
            else:
                actors.add(int(part))
    except ValueError:
        raise TrainingError(f"--actors must look like 1-20 or 1,3,5-8, got {spec!r}") from None
    return actors


def load_dataset(data: list[str], cfg: FeatureConfig, actors: str | None = None, drop_labels=(),
                 log=print) -> tuple[list[Clip], list[np.ndarray], DatasetSummary]:
    clips, summary = discover([Path(p) for p in data], tuple(drop_labels))
    wanted = parse_actors(actors)
    if wanted is not None:
        clips = [c for c in clips if actor_number(c) is None or actor_number(c) in wanted]
        if not clips:
            raise TrainingError(f"no clips left after --actors {actors}")
    clips, audio = load_clips(clips, cfg, summary)
    if not clips:
        raise TrainingError("every audio file was unreadable; nothing to work with")
    for line in summary.lines():
        log(line)
    return clips, audio, summary


def _representative(bank, clip_ids, cfg, seed, n=1000) -> np.ndarray:
    """Calibration windows for int8: random speech crops of training clips, clean and augmented."""
    from training.net import INPUT_CLIP

    rng = np.random.default_rng(seed + 1)
    items = np.flatnonzero(np.isin(bank.item_clip, clip_ids))
    picked = rng.choice(items, size=n, replace=len(items) < n)
    return np.clip(sample_windows(bank, picked, cfg, rng), -INPUT_CLIP, INPUT_CLIP)


def fit_and_export(bank, clips, audio_ids, cfg, recipe: Recipe, out_stem: Path, card: dict, log=print):
    labels = label_indices(clips)
    model = train_model(bank, audio_ids, labels[audio_ids], cfg, recipe, log=log)
    rep = _representative(bank, audio_ids, cfg, recipe.seed)
    return export_model(model, rep, out_stem, cfg, card)


def export_model(model, rep, out_stem, cfg, card):
    from training.export import export

    return export(model, rep, out_stem, cfg, card)


AGREEMENT_KEYS = ("int8_float_agreement", "int8_float_agreement_speech_windows", "int8_float_agreement_decided_windows")


def _mean_of_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def cross_validate(clips, audio, cfg, recipe: Recipe, folds: int, out_dir: Path, cache_dir: Path | None,
                   log=print, rescore: bool = False, condition: InputCondition = AS_RECORDED) -> dict:
    """Speaker-held-out CV: each fold's whole speakers are unseen by its model; int8 figures.

    With ``rescore`` the fold models already in ``out_dir`` are scored again, not retrained;
    a rescore under another input ``condition`` writes ``cv<condition suffix>.json`` (and its
    reports) beside ``cv.json`` instead of replacing it.
    """
    if not condition.plain and not rescore:
        raise TrainingError("--gain-db and --snr-db need --rescore: they score fold models, not train them")
    speakers = [c.speaker for c in clips]
    groups = speaker_folds(speakers, folds)
    previous = Path(out_dir) / "cv.json"
    if rescore:
        if not previous.exists():
            raise TrainingError(f"--rescore: no {previous} from an earlier run")
        old = json.loads(previous.read_text())
        recipe = Recipe(**{**old["recipe"], "widths": tuple(old["recipe"]["widths"])})
    else:
        bank = build_bank(clips, audio, cfg, recipe.copies, recipe.seed, cache_dir)
    suffix, title = condition.suffix, condition.describe()
    labels = label_indices(clips)
    results, pooled = [], {"clip_true": [], "clip_pred": [], "win_true": [], "win_pred": []}
    start = time.time()
    for k, held in enumerate(groups):
        held_set = set(held)
        test_ids = np.asarray([i for i, c in enumerate(clips) if c.speaker in held_set])
        train_ids = np.asarray([i for i, c in enumerate(clips) if c.speaker not in held_set])
        log(f"fold {k + 1}/{folds}: held-out speakers {', '.join(held)} ({len(test_ids)} clips)")
        stem = Path(out_dir) / f"fold{k + 1}" / "model"
        if not rescore:
            fit_and_export(bank, clips, train_ids, cfg, recipe, stem, {"fold": k + 1, "held_out": held}, log=log)
        ev = condition.windows([audio[i] for i in test_ids], cfg, log)
        res = evaluate_model(stem.with_suffix(".tflite"), ev, labels[test_ids], threads=recipe.threads)
        write_report(res, stem.parent / f"report{suffix}", f"fold {k + 1} (held out: {', '.join(held)}){title}")
        log(f"  clip acc {res.clip['accuracy']:.3f} UAR {res.clip['uar']:.3f} F1 {res.clip['macro_f1']:.3f} | "
            f"window acc {res.window['accuracy']:.3f} UAR {res.window['uar']:.3f} | "
            f"int8/float agree {_percent(res.agreement)}, {_percent(res.agreement_decided)} where float is decided "
            f"({time.time() - start:.0f} s)")
        results.append({"fold": k + 1, "held_out": held, **res.summary()})
        pooled["clip_true"].append(res.clip_true)
        pooled["clip_pred"].append(res.clip_pred)
        pooled["win_true"].append(res.window_true)
        pooled["win_pred"].append(res.window_pred)
    ct, cp = np.concatenate(pooled["clip_true"]), np.concatenate(pooled["clip_pred"])
    wt, wp = np.concatenate(pooled["win_true"]), np.concatenate(pooled["win_pred"])
    summary = {
        "protocol": f"{folds}-fold speaker-held-out CV (whole speakers per fold), int8 model, "
                    f"clip = mean probability of its speech windows{title}",
        "input_condition": {"gain_db": condition.gain_db, "snr_db": condition.snr_db},
        "speakers": sorted(set(speakers)),
        "recipe": recipe.to_dict(),
        "pooled_clip": metrics(ct, cp),
        "pooled_window": metrics(wt, wp),
        "mean_fold_clip": {m: float(np.mean([r["clip"][m] for r in results])) for m in ("accuracy", "uar", "macro_f1")},
        "std_fold_clip": {m: float(np.std([r["clip"][m] for r in results])) for m in ("accuracy", "uar", "macro_f1")},
        **{key: _mean_of_known([r[key] for r in results]) for key in AGREEMENT_KEYS},
        "folds": results,
        "seconds": old["seconds"] if rescore else round(time.time() - start),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"cv{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    fake = Evaluation(summary["pooled_window"], summary["pooled_clip"], summary["int8_float_agreement"], 0,
                      ct, cp, wt, wp)
    write_report(fake, out_dir / f"report{suffix}", f"{folds}-fold speaker CV, pooled{title}")
    log(f"CV pooled clip{title}: acc {summary['pooled_clip']['accuracy']:.3f} UAR {summary['pooled_clip']['uar']:.3f} "
        f"macro-F1 {summary['pooled_clip']['macro_f1']:.3f}; window: acc {summary['pooled_window']['accuracy']:.3f} "
        f"UAR {summary['pooled_window']['uar']:.3f}; int8/float agreement {_percent(summary['int8_float_agreement'])}")
    return summary


def card_cv(summary: dict) -> dict:
    return {k: summary[k] for k in ("protocol", "pooled_clip", "pooled_window", "mean_fold_clip", "std_fold_clip",
                                    *AGREEMENT_KEYS)} | {
        "per_fold_clip": [{"fold": f["fold"], "held_out": f["held_out"], **f["clip"]} for f in summary["folds"]]}


def train_command(data, out: Path, cfg: FeatureConfig, recipe: Recipe, actors=None, drop_labels=(), cv_folds=0,
                  cache_dir: Path | None = DEFAULT_CACHE, log=print) -> dict:
    start = time.time()
    clips, audio, summary = load_dataset(data, cfg, actors, drop_labels, log=log)
    card = {
        "model": describe_network(recipe.head),
        "task": f"{len(EMOTIONS)}-class speech emotion, one {cfg.window_s:g} s window every {cfg.hop_s:g} s",
        "training_data": {"folders": [Path(p).name for p in data], "actors": actors, "clips": len(clips),
                          "speakers": len({c.speaker for c in clips}),
                          "corpora": dict(summary.per_corpus), "skipped_unreadable": len(summary.unreadable)},
        "recipe": recipe.to_dict(),
        "limitations": "acted, studio-recorded North American English from 20 actors (RAVDESS 01-20); "
                       "expect lower accuracy on spontaneous speech, other languages and far-field rooms; "
                       "RAVDESS actors 21-24 were never used (kept for an independent check)",
    }
    if cv_folds:
        cv_summary = cross_validate(clips, audio, cfg, recipe, cv_folds, Path("runs") / f"cv-{out.name}",
                                    cache_dir, log=log)
        card["speaker_independent_cv"] = card_cv(cv_summary)
    bank = build_bank(clips, audio, cfg, recipe.copies, recipe.seed, cache_dir)
    log(f"training the final model on all {len(clips)} clips")
    all_ids = np.arange(len(clips))
    clf = fit_and_export(bank, clips, all_ids, cfg, recipe, out, card, log=log)
    res = evaluate_model(out.with_name(out.name + ".tflite"), eval_windows(audio, cfg), label_indices(clips),
                         threads=recipe.threads)
    card_path = out.with_name(out.name + ".json")
    meta = json.loads(card_path.read_text())
    meta["card"]["train_seconds"] = round(time.time() - start)
    meta["card"]["final_model_int8_float_agreement"] = {
        "windows": f"all {res.window['all_windows']} windows of the {len(clips)} training clips; agreement only, "
                   "the accuracy there is training accuracy",
        "all_windows": round(res.agreement, 4), "speech_windows": round(res.agreement_speech, 4)}
    card_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"wrote {out.with_name(out.name + '.tflite')} ({meta['card']['int8_size_bytes']} bytes) and {card_path}; "
        f"labels {list(clf.labels)}; {time.time() - start:.0f} s")
    return meta


def evaluate_command(data, model_path: Path, actors=None, drop_labels=(), report_dir=None,
                     condition: InputCondition = AS_RECORDED, log=print) -> Evaluation:
    from ser_live.model import ModelMetadata, metadata_path_for

    if not Path(model_path).exists():
        raise TrainingError(f"model not found: {model_path}")
    meta = ModelMetadata.load(metadata_path_for(Path(model_path)))
    cfg = meta.features
    clips, audio, _ = load_dataset(data, cfg, actors, drop_labels, log=log)
    ev = condition.windows(audio, cfg, log)
    res = evaluate_model(Path(model_path), ev, label_indices(clips))
    log(f"per clip ({res.clip['n']}): accuracy {res.clip['accuracy']:.3f}  UAR {res.clip['uar']:.3f}  "
        f"macro-F1 {res.clip['macro_f1']:.3f}")
    log(f"per speech window ({res.window['n']} of {res.window['all_windows']}): accuracy "
        f"{res.window['accuracy']:.3f}  UAR {res.window['uar']:.3f}  macro-F1 {res.window['macro_f1']:.3f}")
    if res.agreement is not None:
        log(f"int8 vs float: same top class on {res.agreement:.2%} of windows "
            f"({res.agreement_speech:.2%} of speech windows; {_percent(res.agreement_decided)} of the windows "
            f"where float's top two are >= {DECIDED_MARGIN:g} apart)")
    else:
        log("int8 vs float: no <name>.float.tflite beside the model, agreement not measured")
    if res.no_speech_clips:
        log(f"clips with no speech window (scored on all their windows): {res.no_speech_clips}")
    from training.evaluate import per_class_report

    log("per clip:\n" + per_class_report(res.clip_true, res.clip_pred))
    if report_dir:
        write_report(res, Path(report_dir), f"{Path(model_path).name}")
        log(f"report written to {report_dir}")
    return res
