"""The ``ser-live`` command: desktop app, headless streaming, device listing and file analysis.

User mistakes (a missing file, a bad model, an unknown device) end in one line on stderr and
exit status 2; Ctrl-C and end of input end cleanly with a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ser_live import __version__
from ser_live.errors import AudioFileError, SerLiveError
from ser_live.gate import GateConfig
from ser_live.model import EmotionClassifier
from ser_live.processor import DEFAULT_SMOOTHING_S, LOW_POWER_HOP_S, ProcessorSettings, StreamProcessor
from ser_live.rotating import DEFAULT_KEEP_FILES, DEFAULT_ROTATE_MB, RotatingFileSink

if TYPE_CHECKING:
    from ser_live.capture import FileSource, MicrophoneSource
    from ser_live.processor import WindowResult

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser-live",
        description="Real-time speech emotion recognition. With no options, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"ser-live {__version__}")
    parser.add_argument("--model", type=Path, help="a .tflite model with its .json beside it (default: shipped)")
    parser.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    parser.add_argument("--headless", action="store_true", help="no window: print one record per hop")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--device", help="input device index or part of its name (default: system default)")
    source.add_argument("--input", type=Path, metavar="FILE", help="replay an audio file instead of a device")
    parser.add_argument("--device-rate", type=int, metavar="HZ", help="open the device at this sample rate")
    parser.add_argument("--fast", action="store_true", help="with --input: as fast as possible, not real time")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--out", type=Path, metavar="F", help="write records to F instead of stdout")
    out.add_argument("--out-dir", type=Path, metavar="DIR", help="write records to rotating files in DIR (headless)")
    parser.add_argument("--rotate-mb", type=float, default=DEFAULT_ROTATE_MB, metavar="MB",
                        help=f"with --out-dir: start a new file at this size (default {DEFAULT_ROTATE_MB:g})")
    parser.add_argument("--keep-files", type=int, default=DEFAULT_KEEP_FILES, metavar="N",
                        help=f"with --out-dir: keep the newest N files (default {DEFAULT_KEEP_FILES})")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="record format (headless)")
    parser.add_argument("--hop", type=float, metavar="S", help="seconds between results (default: model's)")
    parser.add_argument("--low-power", action="store_true",
                        help=f"for a Raspberry Pi: a result every {LOW_POWER_HOP_S:g} s (unless --hop) and a "
                        "slower window redraw")
    parser.add_argument(
        "--smoothing", type=float, metavar="S",
        help=f"time constant of probability smoothing, 0 for none (default {DEFAULT_SMOOTHING_S})",
    )
    parser.add_argument(
        "--gate-db", type=float, metavar="DB",
        help=f"speech must peak above this level in dBFS; lower it for a quiet microphone "
        f"(default {GateConfig.min_level_db:g})",
    )
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="desktop app: save a screenshot at the end")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    analyze = commands.add_parser("analyze", help="the emotion of whole files or folders of files")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    analyze.add_argument("--json", action="store_true", help="one JSON line per file")
    return parser


def settings_from(args: argparse.Namespace) -> ProcessorSettings:
    """The processor settings the options ask for; options that contradict each other are a
    user error here, for every mode (headless, analyze, desktop app)."""
    if args.hop is not None and args.hop <= 0:
        raise SerLiveError("--hop must be positive")
    if args.fast and args.input is None:
        raise SerLiveError("--fast only applies to --input FILE")
    smoothing_s = DEFAULT_SMOOTHING_S if args.smoothing is None else args.smoothing
    if smoothing_s < 0:
        raise SerLiveError("--smoothing must be >= 0")
    gate = GateConfig() if args.gate_db is None else GateConfig(min_level_db=args.gate_db)
    hop_s = LOW_POWER_HOP_S if args.low_power and args.hop is None else args.hop
    return ProcessorSettings(hop_s=hop_s, smoothing_s=smoothing_s, gate=gate)


def load_classifier(args: argparse.Namespace) -> EmotionClassifier:
    """The model named with --model, or the shipped one."""
    return EmotionClassifier(args.model)


def make_processor(args: argparse.Namespace, settings: ProcessorSettings | None = None) -> StreamProcessor:
    try:
        return StreamProcessor(load_classifier(args), settings or settings_from(args))
    except ValueError as exc:  # a hop the model's framing cannot produce
        raise SerLiveError(str(exc)) from exc


def open_source(args: argparse.Namespace, model_rate_hz: int) -> FileSource | MicrophoneSource:
    """The file given with --input, else the input device (opened at a rate it supports)."""
    from ser_live.capture import FileSource, MicrophoneSource

    if args.input is not None:
        return FileSource(args.input, fast=args.fast)
    return MicrophoneSource(args.device, model_rate_hz, args.device_rate)


@contextlib.contextmanager
def output_stream(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        stream = path.open("w", newline="")
    except OSError as exc:
        raise SerLiveError(f"cannot write {path}: {exc.strerror}") from exc
    with stream:
        yield stream


@contextlib.contextmanager
def headless_sink(args: argparse.Namespace, labels: tuple[str, ...]) -> Iterator[Callable[[WindowResult], None]]:
    """Rotating files in --out-dir (the appliance), else one stream (--out or stdout)."""
    from ser_live.sinks import make_sink

    if args.out_dir is None:
        with output_stream(args.out) as stream:
            yield make_sink(args.format, stream, labels)
        return
    if args.rotate_mb <= 0 or args.keep_files < 1:
        raise SerLiveError("--rotate-mb must be above 0 and --keep-files at least 1")
    try:
        sink = RotatingFileSink(args.out_dir, args.format, labels, int(args.rotate_mb * 1e6), args.keep_files,
                                log=lambda line: print(f"ser-live: {line}", file=sys.stderr))
    except OSError as exc:
        raise SerLiveError(f"cannot write in {args.out_dir}: {exc.strerror}") from exc
    with contextlib.closing(sink):
        yield sink


def cmd_list_devices() -> int:
    from ser_live.capture import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found")
    for d in devices:
        print(f"{d['index']:>3}  {d['name']}  ({d['channels']} ch, {d['default_rate_hz']} Hz, {d['hostapi']})")
    return 0


def cmd_headless(args: argparse.Namespace) -> int:
    from ser_live.engine import Engine

    processor = make_processor(args)
    source = open_source(args, processor.cfg.sample_rate_hz)
    print(f"ser-live: {source.describe()}, model {processor.classifier.metadata.name}", file=sys.stderr)
    with headless_sink(args, processor.labels) as sink:
        engine = Engine(source, processor, [sink], args.duration)
        interrupted = False
        try:
            engine.run()
        except KeyboardInterrupt:
            interrupted = True
            engine.stop()
            engine.join(timeout=5)
    print(f"ser-live: {engine.stats.summary()}", file=sys.stderr)
    if engine.error:
        raise SerLiveError(engine.error)
    return EXIT_INTERRUPTED if interrupted else 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from ser_live.analyze import analyze_file, clip_settings
    from ser_live.audio_io import find_audio_files

    missing = [p for p in args.paths if not p.exists()]
    if missing:
        raise SerLiveError(f"not found: {', '.join(map(str, missing))}")
    files = find_audio_files(args.paths)
    if not files:
        raise SerLiveError("no audio files found in " + ", ".join(map(str, args.paths)))
    processor = make_processor(args, clip_settings(settings_from(args)))
    counts: dict[str, int] = {}
    failed = 0
    if not args.json:
        print(f"{'file':<48} {'emotion':<10} {'conf':>5} {'speech':>6} {'windows':>7}")
    for path in files:
        try:
            report = analyze_file(path, processor)
        except AudioFileError as exc:
            failed += 1
            print(f"ser-live: skipped: {exc}", file=sys.stderr)
            continue
        key = report.label or "no speech"
        if report.uncertain:
            key = f"{key}?"  # a best guess below the model's confidence threshold, not a verdict
        counts[key] = counts.get(key, 0) + 1
        if args.json:
            print(json.dumps(report.to_record()), flush=True)
        else:
            conf = f"{report.confidence:.2f}" if report.confidence is not None else "-"
            name = _shorten(report.file, 48)
            print(f"{name:<48} {key:<10} {conf:>5} {report.speech_ratio:>6.0%} {report.windows:>7}")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    done = len(files) - failed
    print(f"ser-live: {done} file{'' if done == 1 else 's'} analysed{f' ({summary})' if summary else ''}; "
          f"{failed} unreadable", file=sys.stderr)
    return 1 if failed == len(files) else 0


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def cmd_gui(args: argparse.Namespace) -> int:
    from ser_live.gui.app import run_app

    return run_app(args)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # A service manager's SIGTERM ends a run as cleanly as Ctrl-C: records flushed, summary printed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.list_devices:
            return cmd_list_devices()
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.headless:
            return cmd_headless(args)
        return cmd_gui(args)
    except SerLiveError as exc:
        print(f"ser-live: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
