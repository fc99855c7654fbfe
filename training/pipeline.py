"""What the commands do: load data, build features, cross-validate, train, export, evaluate."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser_live.config import EMOTIONS, FeatureConfig
from ser_live.model import EmotionClassifier
from training import TrainingError
from training.calibration import OutOfFold, clip_mean
from training.conditions import AS_RECORDED, InputCondition
from training.data import build_bank, eval_windows, label_indices, load_bank, load_clips, sample_windows
from training.datasets import (
    LOCKED_TEST_SPEAKERS,
    Clip,
    DatasetSummary,
    actor_number,
    corpus_folds,
    corpus_labels,
    corpus_of,
    discover,
    speaker_folds,
)
from training.evaluate import (
    DECIDED_MARGIN,
    Evaluation,
    evaluate_model,
    float_path_for,
    metrics,
    stream_by_speaker,
    write_report,
)
from training.export import licence_and_citation
from training.sessions import make_sessions
from training.train import Recipe, describe_network, train_model

DEFAULT_CACHE = Path("runs/cache")
BESIDE_LEAD_NICENESS = 10  # CFS weight 110 against 1024: the lead job gets a core to itself


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


def _representative(bank, clip_ids, cfg, seed, sessions, n=1000) -> np.ndarray:
    """Calibration windows for int8: random speech crops of training clips, clean and augmented."""
    from training.net import INPUT_CLIP

    rng = np.random.default_rng(seed + 1)
    items = np.flatnonzero(np.isin(bank.item_clip, clip_ids))
    picked = rng.choice(items, size=n, replace=len(items) < n)
    return np.clip(sample_windows(bank, picked, cfg, rng, sessions), -INPUT_CLIP, INPUT_CLIP)


def fit_and_export(bank, clips, audio_ids, cfg, recipe: Recipe, out_stem: Path, card: dict, log=print,
                   teachers: tuple[Path, ...] = ()):
    sessions = make_sessions(bank, clips, audio_ids, cfg)
    model = train_model(bank, audio_ids, clips, cfg, recipe, sessions, log=log, teachers=teachers)
    rep = _representative(bank, audio_ids, cfg, recipe.seed, sessions)
    return export_model(model, rep, out_stem, cfg, card, sessions.prior if sessions else None)


@dataclass(frozen=True)
class TrainJob:
    """One model to train: a CV fold's or the final one."""

    name: str
    train_ids: np.ndarray  # indices into the clip list
    stem: Path
    card: dict
    teachers: tuple[Path, ...] = ()  # the models distilled from, their mean (``Recipe.distill_weight``)
    lead: bool = False  # the longest job (the final model): the others run niced beside it (``run_jobs``)


@dataclass(frozen=True)
class Teacher:
    """A checked teacher: its float twin (what teaches) and its model card (what the student's card cites)."""

    float_path: Path
    card: dict


def teacher_model(path: Path, cfg: FeatureConfig, scored_on: set[str]) -> Teacher:
    """The float twin of a teacher model (``<name>.float.tflite``, which ``train`` writes beside the
    int8 file) and its card, checked: the same features, and none of ``scored_on`` (the speakers
    the student will be scored on) in its training data, or its knowledge of those voices would
    leak into the student's figures."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if path.suffix != ".tflite" or not path.is_file() or not meta_path.is_file():
        raise TrainingError(f"teacher {path}: expected a .tflite model with its .json beside it")
    meta = json.loads(meta_path.read_text())
    if meta.get("features") != cfg.to_dict():
        raise TrainingError(f"teacher {path}: its features differ from the student's (front end, normalization)")
    card = meta.get("card", {})
    locked_out = card.get("training_data", {}).get("locked_test_speakers_left_out", [])
    unheard = set(card.get("held_out", [])) | set(locked_out)
    if not scored_on <= unheard:
        raise TrainingError(f"teacher {path} may have trained on {', '.join(sorted(scored_on - unheard))}, "
                            "whom the student is scored on")
    twin = float_path_for(path)
    if not twin.is_file():
        raise TrainingError(f"teacher {path}: its float twin {twin.name} is missing (train writes it beside the model)")
    return Teacher(twin, card)


def _run_job_in_worker(job: TrainJob, clips: list[Clip], cfg: FeatureConfig, recipe: Recipe, cache_dir: Path,
                       niced: bool = False) -> str:
    """A worker process: the bank from the cache the parent wrote, then train and export."""
    if niced and hasattr(os, "nice"):
        os.nice(BESIDE_LEAD_NICENESS)
    bank = load_bank(clips, cfg, recipe.rendering, cache_dir)
    if bank is None:
        raise TrainingError(f"{job.name}: feature cache vanished from {cache_dir}")
    start = time.time()
    fit_and_export(bank, clips, job.train_ids, cfg, recipe, job.stem, job.card,
                   log=lambda line: print(f"[{job.name}] {line.strip()}", flush=True), teachers=job.teachers)
    return f"{job.name} trained in {time.time() - start:.0f} s{' (niced)' if niced else ''}"


def run_jobs(jobs: list[TrainJob], bank, clips, cfg, recipe: Recipe, cache_dir: Path | None, parallel: int,
             log=print) -> None:
    """Train ``jobs``; with ``parallel`` > 1 in that many processes, each on one thread.

    Two folds on two cores take about as long as one on both (the network is too small for a
    second thread to help much), so parallel processes halve a CV. They read the bank from the
    cache, so ``parallel`` > 1 needs one.

    With a ``lead`` job (the final model, half as long again as a fold) and a process for each
    job, the others run niced: otherwise all share the cores alike, the folds end together and
    the final model trains on alone, one core idle. Given a core of its own from the start, it
    ends first and the folds then have both (3 folds and the final model on 2 cores: 2.25 fold
    times instead of 2.5). Priority only orders the work; every model is the same.
    """
    if parallel <= 1:
        for job in jobs:
            fit_and_export(bank, clips, job.train_ids, cfg, recipe, job.stem, job.card, log=log, teachers=job.teachers)
        return
    if cache_dir is None:
        raise TrainingError("--jobs > 1 needs the feature cache (--cache): worker processes read the bank from it")
    from ser_live.workers import worker_pool

    single = Recipe(**{**recipe.to_dict(), "widths": recipe.widths, "threads": 1})
    with worker_pool(parallel) as pool:
        lead = any(job.lead for job in jobs) and len(jobs) <= parallel  # one process a job: none runs two
        futures = [pool.submit(_run_job_in_worker, job, clips, cfg, single, cache_dir, lead and not job.lead)
                   for job in jobs]
        for future in futures:
            log(future.result())


def export_model(model, rep, out_stem, cfg, card, prior=None):
    from training.export import export

    return export(model, rep, out_stem, cfg, card, prior)


AGREEMENT_KEYS = ("int8_float_agreement", "int8_float_agreement_speech_windows", "int8_float_agreement_decided_windows")


def _mean_of_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def fold_jobs(clips: list[Clip], groups: list[list[str]], out_dir: Path, cfg: FeatureConfig,
              teacher_cvs: Sequence[Path] = ()) -> list[TrainJob]:
    """One job a fold; with ``teacher_cvs`` (CVs on the same folds) fold k distills from the mean
    of their fold k models."""
    jobs = []
    for k, held in enumerate(groups):
        train_ids = np.asarray([i for i, c in enumerate(clips) if c.speaker not in set(held)])
        teachers = tuple(teacher_model(Path(cv) / f"fold{k + 1}" / "model.tflite", cfg, set(held)).float_path
                         for cv in teacher_cvs)
        card = {"fold": k + 1, "held_out": held, **({"teachers": [str(t) for t in teachers]} if teachers else {})}
        jobs.append(TrainJob(f"fold {k + 1}", train_ids, Path(out_dir) / f"fold{k + 1}" / "model", card, teachers))
    return jobs


def cross_validate(clips, audio, cfg, recipe: Recipe, folds: int, out_dir: Path, cache_dir: Path | None,
                   log=print, rescore: bool = False, condition: InputCondition = AS_RECORDED,
                   parallel: int = 1, by_corpus: bool = False, teacher_cvs: Sequence[Path] = ()) -> dict:
    """Speaker-held-out CV: each fold's whole speakers are unseen by its model; int8 figures.
    ``by_corpus``: one fold per corpus instead of ``folds`` (leave one corpus out); ``teacher_cvs``:
    CVs on the same folds whose fold models, averaged, are distilled from (``Recipe.distill_weight``).

    With ``rescore`` the fold models already in ``out_dir`` are scored again, not retrained;
    a rescore under another input ``condition`` writes ``cv<condition suffix>.json`` (and its
    reports) beside ``cv.json`` instead of replacing it.
    """
    if not condition.plain and not rescore:
        raise TrainingError("--gain-db, --snr-db and --codec need --rescore: they score fold models, not train them")
    speakers = [c.speaker for c in clips]
    groups = corpus_folds(speakers) if by_corpus else speaker_folds(speakers, folds)
    previous = Path(out_dir) / "cv.json"
    if rescore:
        if not previous.exists():
            raise TrainingError(f"--rescore: no {previous} from an earlier run")
        old = json.loads(previous.read_text())
        recipe = Recipe(**{**old["recipe"], "widths": tuple(old["recipe"]["widths"])})
        return score_folds(clips, audio, cfg, recipe, groups, out_dir, log, condition, old["seconds"])
    if (recipe.distill_weight > 0) != bool(teacher_cvs):
        raise TrainingError("--distill W and --teacher-cv go together")
    jobs = fold_jobs(clips, groups, out_dir, cfg, teacher_cvs)
    start = time.time()
    bank = build_bank(clips, audio, cfg, recipe.rendering, cache_dir, parallel)
    run_jobs(jobs, bank, clips, cfg, recipe, cache_dir, parallel, log)
    return score_folds(clips, audio, cfg, recipe, groups, out_dir, log, condition, round(time.time() - start))


def score_folds(clips, audio, cfg, recipe: Recipe, groups: list[list[str]], out_dir: Path, log=print,
                condition: InputCondition = AS_RECORDED, seconds: int = 0) -> dict:
    """Score each fold model on its held-out speakers; pooled and per-corpus figures, out-of-fold
    probabilities (``oof<suffix>.npz``, for calibration), ``cv<suffix>.json`` and reports."""
    folds = len(groups)
    suffix, title = condition.suffix, condition.describe()
    labels = label_indices(clips)
    results = []
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ("clip_true", "clip_pred", "win_true", "win_pred")}
    oof_parts: dict[str, list[np.ndarray]] = {k: [] for k in ("probs", "clip", "speech", "ids", "fold")}
    start = time.time()
    for k, held in enumerate(groups):
        held_set = set(held)
        test_ids = np.asarray([i for i, c in enumerate(clips) if c.speaker in held_set])
        log(f"fold {k + 1}/{folds}: held-out speakers {', '.join(held)} ({len(test_ids)} clips)")
        stem = Path(out_dir) / f"fold{k + 1}" / "model"
        ev = condition.windows([audio[i] for i in test_ids], cfg, log)
        res = evaluate_model(stem.with_suffix(".tflite"), ev, labels[test_ids], threads=recipe.threads)
        write_report(res, stem.parent / f"report{suffix}", f"fold {k + 1} (held out: {', '.join(held)}){title}")
        log(f"  clip acc {res.clip['accuracy']:.3f} UAR {res.clip['uar']:.3f} F1 {res.clip['macro_f1']:.3f} | "
            f"window acc {res.window['accuracy']:.3f} UAR {res.window['uar']:.3f} | "
            f"int8/float agree {_percent(res.agreement)}, {_percent(res.agreement_decided)} where float is decided "
            f"({time.time() - start:.0f} s)")
        results.append({"fold": k + 1, "held_out": held, **res.summary()})
        if ev.clip_moments is not None:  # session adaptation from all of a speaker's clips, not one
            by_speaker = evaluate_model(stem.with_suffix(".tflite"), ev, labels[test_ids], recipe.threads,
                                        np.asarray([clips[i].speaker for i in test_ids])).clip
            results[-1]["adapt_by_speaker_clip"] = by_speaker
            log(f"  adapted to each speaker's clips: clip acc {by_speaker['accuracy']:.3f} UAR {by_speaker['uar']:.3f}")
        pooled["clip_true"].append(res.clip_true)
        pooled["clip_pred"].append(res.clip_pred)
        pooled["win_true"].append(res.window_true)
        pooled["win_pred"].append(res.window_pred)
        oof_parts["probs"].append(res.window_probs)
        oof_parts["clip"].append(ev.clip_index + sum(len(i) for i in oof_parts["ids"]))
        oof_parts["speech"].append(ev.speech)
        oof_parts["ids"].append(test_ids)
        oof_parts["fold"].append(np.full(len(test_ids), k + 1))
    ids = np.concatenate(oof_parts["ids"])
    oof = OutOfFold(np.concatenate(oof_parts["probs"]), np.concatenate(oof_parts["clip"]),
                    np.concatenate(oof_parts["speech"]), labels[ids], np.concatenate(oof_parts["fold"]),
                    np.asarray([clips[i].corpus for i in ids]))
    ct, cp = np.concatenate(pooled["clip_true"]), np.concatenate(pooled["clip_pred"])
    wt, wp = np.concatenate(pooled["win_true"]), np.concatenate(pooled["win_pred"])
    summary = {
        "protocol": f"{_folds_name(groups)} (whole speakers per fold), int8 model, "
                    f"clip = mean probability of its speech windows{title}",
        "input_condition": condition.to_dict(),
        "speakers": sorted({c.speaker for c in clips}),
        "recipe": recipe.to_dict(),
        "pooled_clip": metrics(ct, cp),
        "pooled_window": metrics(wt, wp),
        "per_corpus": per_corpus(oof),
        "mean_fold_clip": {m: float(np.mean([r["clip"][m] for r in results])) for m in ("accuracy", "uar", "macro_f1")},
        "std_fold_clip": {m: float(np.std([r["clip"][m] for r in results])) for m in ("accuracy", "uar", "macro_f1")},
        **{key: _mean_of_known([r[key] for r in results]) for key in AGREEMENT_KEYS},
        "folds": results,
        "seconds": seconds,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    oof.save(out_dir / f"oof{suffix}.npz")
    (out_dir / f"cv{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    fake = Evaluation(summary["pooled_window"], summary["pooled_clip"], summary["int8_float_agreement"], 0,
                      ct, cp, wt, wp)
    write_report(fake, out_dir / f"report{suffix}", f"{_folds_name(groups)}, pooled{title}")
    log(f"CV pooled clip{title}: acc {summary['pooled_clip']['accuracy']:.3f} UAR {summary['pooled_clip']['uar']:.3f} "
        f"macro-F1 {summary['pooled_clip']['macro_f1']:.3f}; window: acc {summary['pooled_window']['accuracy']:.3f} "
        f"UAR {summary['pooled_window']['uar']:.3f}; int8/float agreement {_percent(summary['int8_float_agreement'])}")
    for corpus, figures in summary["per_corpus"].items():
        log(f"  {corpus}: clip acc {figures['clip']['accuracy']:.3f} UAR {figures['clip']['uar']:.3f} "
            f"({figures['clip']['n']} clips); window acc {figures['window']['accuracy']:.3f}"
            f"{_foreign_verdicts(figures)}")
    return summary


def _folds_name(groups: list[list[str]]) -> str:
    corpora = [{corpus_of(speaker) for speaker in held} for held in groups]
    if len(groups) > 1 and all(len(c) == 1 for c in corpora) and len(set().union(*corpora)) == len(groups):
        return "leave-one-corpus-out CV"
    return f"{len(groups)}-fold speaker-held-out CV"


def per_corpus(oof: OutOfFold) -> dict:
    """Clip and speech-window figures of each corpus's held-out clips (clip = mean of speech windows),
    and how many clips got each verdict: a label the corpus does not have (calm, for TESS and
    SAVEE) is always wrong there, and only these counts show how often it is given."""
    n_clips = len(oof.clip_labels)
    clip_pred = clip_mean(oof.window_probs, oof.window_clip, oof.window_speech, n_clips).argmax(axis=1)
    out = {}
    for corpus in sorted(set(oof.clip_corpus.tolist())):
        mine = oof.clip_corpus == corpus
        win = oof.window_speech & mine[oof.window_clip]
        w_true = oof.clip_labels[oof.window_clip[win]]
        verdicts = np.bincount(clip_pred[mine], minlength=len(EMOTIONS))
        out[corpus] = {"clip": metrics(oof.clip_labels[mine], clip_pred[mine]),
                       "window": metrics(w_true, oof.window_probs[win].argmax(axis=1)),
                       "clip_verdicts": dict(zip(EMOTIONS, verdicts.tolist(), strict=True)),
                       "labels": [EMOTIONS[i] for i in np.unique(oof.clip_labels[mine])]}
    return out


def foreign_verdicts(figures: dict) -> dict[str, int]:
    """A corpus's clip verdicts (``per_corpus``) that are not among its labels: always wrong."""
    return {label: n for label, n in figures.get("clip_verdicts", {}).items() if n and label not in figures["labels"]}


def _foreign_verdicts(figures: dict) -> str:
    """``, 77 clips called calm (not one of its labels)`` for a corpus's verdicts outside its labels."""
    foreign = [f"{n} clip{'' if n == 1 else 's'} called {label}" for label, n in foreign_verdicts(figures).items()]
    return f", {', '.join(foreign)} (not one of its labels)" if foreign else ""


NORMALIZATION_CARD = {
    "window_cmvn": "each window by its own band means and spread, fixed log floor",
    "gain_cmvn": "each window by its own band means and spread, floor 37 dB below its loud frames",
    "session_cmvn": "session adaptation: each speech window by the band means and spread of the voice heard so far "
                    "(live, with a 60 s memory; analyze: the file's folder), blended with the training speakers' "
                    "average (the 'adaptation' block)",
}


def card_cv(summary: dict) -> dict:
    keys = ("protocol", "pooled_clip", "pooled_window", "per_corpus", "mean_fold_clip", "std_fold_clip")
    card = {k: summary[k] for k in (*keys, *AGREEMENT_KEYS)} | {
        "per_fold_clip": [{"fold": f["fold"], "held_out": f["held_out"], **f["clip"]} for f in summary["folds"]]}
    if all("adapt_by_speaker_clip" in f for f in summary["folds"]):  # learning each held-out voice from all its clips
        card["per_fold_clip_adapted_by_speaker"] = [{"fold": f["fold"], **f["adapt_by_speaker_clip"]}
                                                     for f in summary["folds"]]
        n = sum(f["adapt_by_speaker_clip"]["n"] for f in summary["folds"])
        card["pooled_clip_adapted_by_speaker_accuracy"] = sum(
            f["adapt_by_speaker_clip"]["accuracy"] * f["adapt_by_speaker_clip"]["n"] for f in summary["folds"]) / n
    return card


def split_locked(clips: list[Clip], audio: list[np.ndarray], locked: frozenset[str], log=print
                 ) -> tuple[list[Clip], list[np.ndarray], list[Clip], list[np.ndarray]]:
    """(clips and audio to work with, the locked test's): no recipe decision may see the latter."""
    keep = [i for i, c in enumerate(clips) if c.speaker not in locked]
    held = [i for i, c in enumerate(clips) if c.speaker in locked]
    if held:
        log(f"locked test: {len(held)} clips of {', '.join(sorted({clips[i].speaker for i in held}))} set aside")
    if not keep:
        raise TrainingError("every clip belongs to a locked test speaker; nothing to train on")
    return [clips[i] for i in keep], [audio[i] for i in keep], [clips[i] for i in held], [audio[i] for i in held]


def limitations(clips: list[Clip]) -> str:
    corpora = sorted({c.corpus for c in clips})
    return (f"acted, studio-recorded English ({', '.join(corpora)}; {len({c.speaker for c in clips})} speakers); "
            "expect lower accuracy on spontaneous speech, other languages and far-field rooms; RAVDESS actors 21-24 "
            "were never used (kept for an independent check)")


def calibrate(cv_dir: Path, model_json: Path, log=print) -> dict:
    """Fit the temperature on the CV's out-of-fold windows, store it in the model, plot the curves."""
    from ser_live.model import DEFAULT_UNCERTAIN_BELOW
    from training.calibration import calibration_summary, plot_coverage, plot_reliability, write_calibration

    oof = OutOfFold.load(Path(cv_dir) / "oof.npz")
    summary, curves = calibration_summary(oof, DEFAULT_UNCERTAIN_BELOW)
    write_calibration(model_json, summary["temperature"], summary["uncertain_below"], summary["fitted_on"])
    plot_reliability(curves, Path(cv_dir) / "reliability.png", "Held-out speakers (speaker CV, cross-fitted)")
    plot_coverage(curves, Path(cv_dir) / "coverage.png", "Calibrated confidence, held-out speakers",
                  summary["uncertain_below"])
    log(f"calibration: temperature {summary['temperature']:.3f}; ECE (cross-fitted) window "
        f"{summary['ece_window']['raw']:.3f} -> {summary['ece_window']['calibrated']:.3f}, clip "
        f"{summary['ece_clip']['raw']:.3f} -> {summary['ece_clip']['calibrated']:.3f}; plots in {cv_dir}")
    return summary


def locked_test(model_path: Path, clips: list[Clip], audio: list[np.ndarray], cfg: FeatureConfig, threads: int,
                log=print) -> dict:
    """The shipped model, calibrated, on the locked test speakers: once per shipped model."""
    from training.calibration import ece

    ev = eval_windows(audio, cfg)
    labels = label_indices(clips)
    res = evaluate_model(model_path, ev, labels, threads=threads)
    oof = OutOfFold(res.window_probs, ev.clip_index, ev.speech, labels, np.zeros(len(clips), np.int64),
                    np.asarray([c.corpus for c in clips]))
    clip_p = clip_mean(res.window_probs, ev.clip_index, ev.speech, len(clips))
    speech = ev.speech
    out = {
        "speakers": sorted({c.speaker for c in clips}),
        "clip": res.clip, "window": res.window, "per_corpus": per_corpus(oof),
        "ece_window": ece(res.window_probs[speech], labels[ev.clip_index[speech]]),
        "ece_clip": ece(clip_p, labels),
        "clips_without_speech_window": res.no_speech_clips,
        **{key: value for key, value in res.summary().items() if key.startswith("int8_float")},
    }
    log(f"LOCKED TEST ({', '.join(out['speakers'])}): clip acc {res.clip['accuracy']:.3f} UAR {res.clip['uar']:.3f}; "
        f"window acc {res.window['accuracy']:.3f}; ECE window {out['ece_window']:.3f} clip {out['ece_clip']:.3f}")
    if ev.clip_moments is not None:  # a session-adapting model: also learning from more than one clip
        speakers = [c.speaker for c in clips]
        out["adapt_by_speaker"] = evaluate_model(model_path, ev, labels, threads, np.asarray(speakers)).clip
        out["adapt_stream_by_speaker"] = stream_by_speaker(model_path, audio, speakers, labels)
        log(f"  adapted to each speaker's clips (as --adapt-by folder): clip acc "
            f"{out['adapt_by_speaker']['accuracy']:.3f} UAR {out['adapt_by_speaker']['uar']:.3f}; each speaker's "
            f"clips in a row, live: acc {out['adapt_stream_by_speaker']['accuracy']:.3f} "
            f"UAR {out['adapt_stream_by_speaker']['uar']:.3f}")
    for corpus, figures in out["per_corpus"].items():
        log(f"  {corpus}: clip acc {figures['clip']['accuracy']:.3f} UAR {figures['clip']['uar']:.3f} "
            f"({figures['clip']['n']} clips){_foreign_verdicts(figures)}")
    return out


def trained_folds(cv_dir: Path, recipe: Recipe, jobs: list[TrainJob], cfg: FeatureConfig) -> bool:
    """Whether ``cv_dir`` already holds a finished CV of exactly these fold ``jobs``: the same recipe
    (seed and threads included), folds, features and teachers. Its fold models are then reused, as
    the feature cache is: the same command trains the same models, and a CV costs an hour of two cores."""
    summary = Path(cv_dir) / "cv.json"
    if not jobs or not summary.is_file():
        return False
    old = json.loads(summary.read_text())
    if Recipe.stored(old.get("recipe", {})) != recipe.to_dict() or [f["held_out"] for f in old.get("folds", [])] != [
            j.card["held_out"] for j in jobs]:
        return False
    for job in jobs:
        model, meta = job.stem.with_suffix(".tflite"), job.stem.with_suffix(".json")
        if not (model.is_file() and meta.is_file()):
            return False
        fold = json.loads(meta.read_text())
        if fold.get("features") != cfg.to_dict() or fold.get("card", {}).get("teachers") != job.card.get("teachers"):
            return False
    return True


def train_command(data, out: Path, cfg: FeatureConfig, recipe: Recipe, actors=None, drop_labels=(), cv_folds=0,
                  cache_dir: Path | None = DEFAULT_CACHE, log=print, parallel: int = 1,
                  locked: frozenset[str] = LOCKED_TEST_SPEAKERS, cv_dir: Path | None = None,
                  teachers: Sequence[Path] = (), teacher_cvs: Sequence[Path] = ()) -> dict:
    """CV folds (in ``parallel`` processes) and the final model side by side, then calibration
    from the folds' held-out windows, then the final model on the locked test speakers.
    Distilling (``Recipe.distill_weight``), the final model learns from the mean of ``teachers``
    and fold k from the mean of the fold k models of ``teacher_cvs``."""
    start = time.time()
    # checked before minutes of loading the data
    distilling = recipe.distill_weight > 0
    if distilling != bool(teachers) or bool(teacher_cvs) != (distilling and cv_folds > 0):
        raise TrainingError("--distill W goes with --teacher, and with --cv also with --teacher-cv")
    if cv_folds and len(teacher_cvs) != len(teachers):
        raise TrainingError("give each --teacher its CV (--teacher-cv), in the same order")
    clips, audio, summary = load_dataset(data, cfg, actors, drop_labels, log=log)
    clips, audio, locked_clips, locked_audio = split_locked(clips, audio, locked, log)
    card = {
        "model": describe_network(recipe.head),
        "task": f"{len(EMOTIONS)}-class speech emotion, one {cfg.window_s:g} s window every {cfg.hop_s:g} s",
        "features": cfg.front_end,
        "normalization": NORMALIZATION_CARD[cfg.normalization],
        "training_data": {"folders": [Path(p).name for p in data], "actors": actors, "clips": len(clips),
                          "speakers": len({c.speaker for c in clips}),
                          "corpora": dict(Counter(c.corpus for c in clips)),
                          "label_sets": {k: sorted(v) for k, v in corpus_labels(clips).items()},
                          "skipped_unreadable": len(summary.unreadable),
                          "locked_test_speakers_left_out": sorted({c.speaker for c in locked_clips})},
        "recipe": recipe.to_dict(),
        "limitations": limitations(clips),
    }
    card["licence"], card["citation"] = licence_and_citation({c.corpus for c in clips})
    cv_dir = cv_dir or Path("runs") / f"cv-{out.name}"
    groups = speaker_folds([c.speaker for c in clips], cv_folds) if cv_folds else []
    folds = fold_jobs(clips, groups, cv_dir, cfg, teacher_cvs)
    if trained_folds(cv_dir, recipe, folds, cfg):
        folds = []
    checked = [teacher_model(path, cfg, {c.speaker for c in locked_clips}) for path in teachers]
    if checked:
        card["teachers"] = [{"file": Path(path).name, "recipe": t.card.get("recipe"),
                             "speaker_independent_cv": t.card.get("speaker_independent_cv")}
                            for path, t in zip(teachers, checked, strict=True)]
    bank = build_bank(clips, audio, cfg, recipe.rendering, cache_dir, parallel)
    if groups and not folds:
        log(f"reusing the {len(groups)} fold models in {cv_dir}: the same recipe, folds and features trained them")
    jobs = folds + [TrainJob("final", np.arange(len(clips)), out, card, tuple(t.float_path for t in checked),
                             lead=True)]
    log(f"training {f'{len(folds)} fold models and ' if folds else ''}the final model on all {len(clips)} clips, "
        f"{parallel} at a time")
    run_jobs(jobs, bank, clips, cfg, recipe, cache_dir, parallel, log)
    del bank
    card_path = out.with_name(out.name + ".json")
    model_path = out.with_name(out.name + ".tflite")
    meta = json.loads(card_path.read_text())
    if cv_folds:
        cv_summary = score_folds(clips, audio, cfg, recipe, groups, cv_dir, log, seconds=round(time.time() - start))
        meta["card"]["speaker_independent_cv"] = card_cv(cv_summary)
        meta["card"]["calibration"] = calibrate(cv_dir, card_path, log)
        meta["calibration"] = json.loads(card_path.read_text())["calibration"]
    card_path.write_text(json.dumps(meta, indent=2) + "\n")
    if locked_clips:  # its int8/float agreement is measured there, on unheard voices
        meta["card"]["locked_test"] = locked_test(model_path, locked_clips, locked_audio, cfg, recipe.threads, log)
    else:
        res = evaluate_model(model_path, eval_windows(audio, cfg), label_indices(clips), threads=recipe.threads)
        meta["card"]["final_model_int8_float_agreement"] = {
            "windows": f"all {res.window['all_windows']} windows of the {len(clips)} training clips; agreement "
                       "only, the accuracy there is training accuracy",
            "all_windows": round(res.agreement, 4), "speech_windows": round(res.agreement_speech, 4)}
    meta["card"]["train_seconds"] = round(time.time() - start)
    card_path.write_text(json.dumps(meta, indent=2) + "\n")
    clf = EmotionClassifier(model_path)
    log(f"wrote {model_path} ({meta['card']['int8_size_bytes']} bytes) and {card_path}; "
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
    from training.calibration import ece
    from training.evaluate import per_class_report

    labels = label_indices(clips)
    probs = clip_mean(res.window_probs, ev.clip_index, ev.speech, len(clips))
    log(f"confidence (temperature {meta.calibration.temperature:g} from the model JSON): ECE per speech window "
        f"{ece(res.window_probs[ev.speech], labels[ev.clip_index[ev.speech]]):.3f}, per clip {ece(probs, labels):.3f}; "
        f"mean clip confidence {probs.max(axis=1).mean():.3f}")

    log("per clip:\n" + per_class_report(res.clip_true, res.clip_pred))
    if report_dir:
        write_report(res, Path(report_dir), f"{Path(model_path).name}")
        log(f"report written to {report_dir}")
    return res
