"""``python -m training {train,evaluate,cv,baselines,calibration,compare,speech-check}``.

User mistakes end in one ``error:`` line and exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ser_live.config import FRONT_ENDS, NORMALIZATIONS, FeatureConfig
from ser_live.errors import SerLiveError
from training import TrainingError
from training.augment import CODECS
from training.conditions import InputCondition
from training.train import Recipe


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="corpus folder, audio file or manifest.csv (repeatable)")
    p.add_argument("--actors", help="RAVDESS actors to use, e.g. 1-20 (other corpora unaffected)")
    p.add_argument("--drop-label", action="append", default=[], metavar="LABEL",
                   help="leave out clips with this corpus label (e.g. boredom in EmoDB)")
    p.add_argument("--cache", default="runs/cache", help="feature cache folder ('' disables)")


def _conditions(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gain-db", type=float, default=0.0, metavar="DB",
                   help="scale the audio by DB (-30: a quiet microphone) and move the speech gate with it")
    p.add_argument("--snr-db", type=float, metavar="DB",
                   help="add coloured noise at this signal-to-noise ratio (10: a noisy room), seeded per clip")
    p.add_argument("--codec", choices=sorted(CODECS),
                   help="then encode and decode the audio at about 14 kbit/s, a voice message's rate")


def _condition(args) -> InputCondition:
    return InputCondition(gain_db=args.gain_db, snr_db=args.snr_db, codec=args.codec)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected two or more positive channel counts, like 16,32,64,96: {text!r}")
    return widths


def _recipe(p: argparse.ArgumentParser) -> None:
    d = Recipe()
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--copies", type=int, default=d.copies, help="augmented renderings per clip")
    p.add_argument("--codecs", type=float, default=d.codec_share, metavar="SHARE",
                   help="share of the renderings that end in a lossy codec, MP3 or Opus (0 to 1)")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--widths", type=_widths, default=d.widths, metavar="W1,W2,...",
                   help="channels of the convolution blocks (capacity: ~4x the weights for 2x the widths)")
    p.add_argument("--head", choices=("gap", "time_meanmax"), default=d.head,
                   help="pooling head: global average, or mean+max over time keeping frequency bands")
    p.add_argument("--mask-labels", action=argparse.BooleanOptionalAction, default=d.mask_labels,
                   help="a clip's loss only among its corpus's labels (a corpus without calm says nothing about "
                        "calm); --no-mask-labels: every clip counts against the labels it is not")
    p.add_argument("--front-end", choices=FRONT_ENDS, default=FeatureConfig().front_end,
                   help="what the model sees: log-mel bands, or MFCCs computed from them")
    p.add_argument("--normalization", choices=NORMALIZATIONS, default=FeatureConfig().normalization,
                   help="per window (gain_cmvn) or adapted to each speaker's session (session_cmvn)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many models at once in separate processes (one thread each)")
    p.add_argument("--distill", type=float, default=d.distill_weight, metavar="W",
                   help="learn W of the loss from a teacher model's softened probabilities (0: labels only)")
    p.add_argument("--distill-temperature", type=float, default=d.distill_temperature, metavar="TAU")
    p.add_argument("--teacher-cv", metavar="DIR", action="append", default=[],
                   help="with --distill: a CV on the same folds; fold k learns from its fold k model "
                        "(repeated: from the mean of their fold k models, an ensemble teacher)")


def _make_recipe(args) -> Recipe:
    if args.epochs < 1 or args.copies < 0 or args.threads < 1 or args.jobs < 1:
        raise SerLiveError("--epochs, --threads and --jobs must be >= 1 and --copies >= 0")
    if not 0 <= args.codecs <= 1:
        raise SerLiveError("--codecs is a share of the renderings, from 0 to 1")
    if not 0 <= args.distill < 1 or args.distill_temperature <= 0:
        raise SerLiveError("--distill must be in [0, 1) and --distill-temperature above 0")
    return Recipe(epochs=args.epochs, seed=args.seed, copies=args.copies, codec_share=args.codecs, threads=args.threads,
                  head=args.head, widths=args.widths, mask_labels=args.mask_labels,
                  distill_weight=args.distill, distill_temperature=args.distill_temperature)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, cross-validate and evaluate ser-live emotion models (see docs/training.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model and export int8 TFLite + metadata JSON")
    _common(p)
    _recipe(p)
    p.add_argument("--out", required=True, help="output stem, e.g. models/ser-cnn")
    p.add_argument("--cv", type=int, default=0, metavar="FOLDS",
                   help="first run speaker-held-out CV with this many folds and put it in the model card")
    p.add_argument("--cv-dir", help="where the CV goes (default runs/cv-<out name>); fold models a finished CV "
                                    "of the same recipe, folds and features left there are reused")
    p.add_argument("--teacher", metavar="MODEL.tflite", action="append", default=[],
                   help="with --distill: the model the final model learns from (trained without the locked "
                        "speakers; repeated: the mean of them), each with its --teacher-cv in the same order")

    p = sub.add_parser("cv", help="speaker-held-out cross-validation (folds of whole speakers)")
    _common(p)
    _recipe(p)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--by-corpus", action="store_true",
                   help="leave one corpus out: one fold per corpus (--folds is ignored)")
    p.add_argument("--out-dir", default="runs/cv")
    p.add_argument("--rescore", action="store_true", help="score the fold models already in --out-dir again")
    _conditions(p)

    p = sub.add_parser("evaluate", help="evaluate a .tflite model (per window and per clip)")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--report-dir", help="write metrics.json, report.txt and confusion PNGs here")
    _conditions(p)

    p = sub.add_parser("baselines", help="the seed recipes (MFCC-stat MLP / SVM), random vs speaker split")
    _common(p)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/baselines.json")

    p = sub.add_parser("calibration", help="cross-fitted calibration of a CV's held-out predictions (prints JSON)")
    p.add_argument("--cv-dir", required=True, help="a cv or train --cv output folder (its oof.npz)")

    p = sub.add_parser("compare", help="CV runs side by side, each recipe's mean over seeds and their "
                                       "ensemble (a Markdown table)")
    p.add_argument("group", nargs="+", metavar="NAME=CV_DIR[,CV_DIR...]",
                   help="one recipe's runs (seeds) on the same folds, e.g. masked=runs/cv-a,runs/cv-b")

    p = sub.add_parser("speech-check", help="which clips get an emotion: non-speech sounds vs speech corpora")
    p.add_argument("--non-speech", action="append", default=[], metavar="PATH",
                   help="folder of non-speech sounds, one sub-folder per class (e.g. ESC-10; repeatable)")
    p.add_argument("--speech", action="append", default=[], metavar="PATH",
                   help="speech corpus folder (repeatable): clips with a speech window, continuous speech per speaker")
    p.add_argument("--no-synthetic", action="store_true", help="skip the synthetic impostors")
    p.add_argument("--model", help="model to run (default: the shipped one; only labels depend on it)")
    p.add_argument("--out", default="runs/speech-check.json")
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    default = FeatureConfig()
    cfg = FeatureConfig(front_end=getattr(args, "front_end", default.front_end),
                        normalization=getattr(args, "normalization", default.normalization))
    cache = Path(args.cache) if getattr(args, "cache", "") else None
    if args.command == "train":
        out = Path(args.out)
        if out.suffix == ".tflite":
            out = out.with_suffix("")
        from training.pipeline import train_command

        train_command(args.data, out, cfg, _make_recipe(args), args.actors, args.drop_label, args.cv, cache,
                      parallel=args.jobs, cv_dir=Path(args.cv_dir) if args.cv_dir else None,
                      teachers=[Path(t) for t in args.teacher], teacher_cvs=[Path(t) for t in args.teacher_cv])
    elif args.command == "cv":
        from training.datasets import LOCKED_TEST_SPEAKERS
        from training.pipeline import cross_validate, load_dataset, split_locked

        clips, audio, _ = load_dataset(args.data, cfg, args.actors, args.drop_label)
        clips, audio, _, _ = split_locked(clips, audio, LOCKED_TEST_SPEAKERS)  # never for recipe decisions
        cross_validate(clips, audio, cfg, _make_recipe(args), args.folds, Path(args.out_dir), cache,
                       rescore=args.rescore, condition=_condition(args), parallel=args.jobs,
                       by_corpus=args.by_corpus, teacher_cvs=[Path(t) for t in args.teacher_cv])
    elif args.command == "evaluate":
        from training.pipeline import evaluate_command

        evaluate_command(args.data, Path(args.model), args.actors, args.drop_label, args.report_dir,
                         condition=_condition(args))
    elif args.command == "baselines":
        from training.baselines import baselines_command

        baselines_command(args.data, cfg, args.actors, args.drop_label, args.folds, args.seed, Path(args.out), cache)
    elif args.command == "calibration":
        from ser_live.model import DEFAULT_UNCERTAIN_BELOW
        from training.calibration import OutOfFold, calibration_summary

        oof_path = Path(args.cv_dir) / "oof.npz"
        if not oof_path.is_file():
            raise TrainingError(f"{oof_path}: no out-of-fold predictions there (run cv or train --cv first)")
        print(json.dumps(calibration_summary(OutOfFold.load(oof_path), DEFAULT_UNCERTAIN_BELOW)[0], indent=2))
    elif args.command == "compare":
        from training.compare import compare, ensemble_figures, parse_group, table

        groups = dict(parse_group(g) for g in args.group)
        runs = compare(groups)
        print(table(runs, {name: ensemble_figures(name, dirs) for name, dirs in groups.items() if len(dirs) > 1}))
    elif args.command == "speech-check":
        from training.speech_check import speech_check

        speech_check([Path(p) for p in args.non_speech], [Path(p) for p in args.speech], Path(args.out),
                     Path(args.model) if args.model else None, synthetic=not args.no_synthetic)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except SerLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
