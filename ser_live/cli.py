"""The ``ser-live`` command: desktop app, headless streaming, device listing and file analysis.

User mistakes (a missing file, a bad model, an unknown device) end in one line on stderr and
exit status 2; Ctrl-C and end of input end cleanly with a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ser_live import __version__
from ser_live.adaptation import ADAPT_BY
from ser_live.assembly import load_classifier, new_processor, open_source, settings_from
from ser_live.errors import EXIT_INTERRUPTED, OutputError, SerLiveError, handle_stop_signals, one_line
from ser_live.gate import GateConfig
from ser_live.native_stderr import filtered_native_stderr
from ser_live.processor import DEFAULT_SMOOTHING_S, LOW_POWER_HOP_S
from ser_live.rotating import DEFAULT_KEEP_FILES, DEFAULT_ROTATE_MB, RotatingFileSink
from ser_live.sinks import FORMATS

if TYPE_CHECKING:
    from ser_live.processor import WindowResult

EXIT_USER_ERROR = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what the shell reports for a tool that a closed pipe ended
DEVICE_RATE_RANGE_HZ = (4000, 768000)
TABLE_FILE_WIDTH = 48


def _number(kind: str, ok: Callable[[float], bool], convert: Callable[[str], float] = float) -> Callable[[str], float]:
    """An argparse type: a finite number for which ``ok`` holds, else a parse error naming ``kind``."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got '{text}'") from None
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {kind}, got '{text}'")
        return value

    parse.__name__ = kind  # argparse names the type in some messages
    return parse


POSITIVE_SECONDS = _number("a positive number of seconds", lambda v: v > 0)
NONNEGATIVE_SECONDS = _number("a number of seconds >= 0", lambda v: v >= 0)
LEVEL_DBFS = _number("a level in dBFS (<= 0)", lambda v: v <= 0)
DEVICE_RATE_HZ = _number(f"a sample rate from {DEVICE_RATE_RANGE_HZ[0]} to {DEVICE_RATE_RANGE_HZ[1]} Hz",
                         lambda v: DEVICE_RATE_RANGE_HZ[0] <= v <= DEVICE_RATE_RANGE_HZ[1], int)
POSITIVE_MEGABYTES = _number("a positive number of megabytes", lambda v: v > 0)
POSITIVE_COUNT = _number("a whole number >= 1", lambda v: v >= 1, int)


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
    parser.add_argument("--device-rate", type=DEVICE_RATE_HZ, metavar="HZ", help="open the device at this sample rate")
    parser.add_argument("--fast", action="store_true", help="with --input: as fast as possible, not real time")
    parser.add_argument("--duration", type=POSITIVE_SECONDS, metavar="S", help="stop after S seconds of audio")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--out", type=Path, metavar="F", help="headless: write records to F instead of stdout")
    out.add_argument("--out-dir", type=Path, metavar="DIR", help="headless: write records to rotating files in DIR")
    parser.add_argument("--rotate-mb", type=POSITIVE_MEGABYTES, default=DEFAULT_ROTATE_MB, metavar="MB",
                        help=f"with --out-dir: start a new file at this size (default {DEFAULT_ROTATE_MB:g})")
    parser.add_argument("--keep-files", type=POSITIVE_COUNT, default=DEFAULT_KEEP_FILES, metavar="N",
                        help=f"with --out-dir: keep the newest N files (default {DEFAULT_KEEP_FILES})")
    parser.add_argument("--format", choices=FORMATS, help=f"headless: record format (default {FORMATS[0]})")
    parser.add_argument("--hop", type=POSITIVE_SECONDS, metavar="S", help="seconds between results (default: model's)")
    parser.add_argument("--low-power", action="store_true",
                        help=f"for a Raspberry Pi: a result every {LOW_POWER_HOP_S:g} s (unless --hop) and a "
                        "slower window redraw")
    parser.add_argument(
        "--smoothing", type=NONNEGATIVE_SECONDS, metavar="S",
        help=f"time constant of probability smoothing, 0 for none (default {DEFAULT_SMOOTHING_S})",
    )
    parser.add_argument(
        "--gate-db", type=LEVEL_DBFS, metavar="DB",
        help=f"speech must peak above this level in dBFS; lower it for a quiet microphone "
        f"(default {GateConfig.min_level_db:g})",
    )
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="desktop app: save a screenshot at the end")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    analyze = commands.add_parser("analyze", help="the emotion of whole files or folders of files")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    analyze.add_argument("--json", action="store_true", help="one JSON line per file")
    analyze.add_argument("--jobs", type=POSITIVE_COUNT, metavar="N",
                         help="files analysed at once, each on its own core (default: all cores)")
    analyze.add_argument("--adapt-by", choices=ADAPT_BY, default=ADAPT_BY[0],
                         help="where a session-adapting model learns the voice: from all files in the "
                         "file's folder (default), the file alone, or the speech so far, as live")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the options together: a combination that means nothing is an error
    here, before anything is loaded or opened (argparse's one line and exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fast and args.input is None:
        parser.error("--fast only applies to --input FILE")
    if args.device_rate is not None and args.input is not None:
        parser.error("--device-rate applies to a device, not to --input FILE (a file has its own rate)")
    if (args.out is not None or args.out_dir is not None or args.format is not None) and not args.headless:
        parser.error("--out, --out-dir and --format apply to --headless records")
    if args.screenshot is not None and (args.headless or args.command == "analyze"):
        parser.error("--screenshot applies to the desktop app")
    if args.command == "analyze" and (args.input is not None or args.device is not None or args.headless):
        parser.error("analyze takes files as arguments, not --input, --device or --headless")
    args.format = args.format or FORMATS[0]
    return args


@contextlib.contextmanager
def output_stream(path: Path | None) -> Iterator[TextIO]:
    """stdout, or the file at ``path``; a failure to open or to close it is an OutputError."""
    if path is None:
        yield sys.stdout
        return
    try:
        stream = path.open("w", newline="")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from exc
    failed = True
    try:
        yield stream
        failed = False
    finally:
        try:
            stream.close()
        except OSError as exc:  # the last buffered records could not be written
            if not failed:  # an error already on its way says it first
                raise OutputError(f"cannot write {path}: {exc.strerror}") from exc


@contextlib.contextmanager
def headless_sink(args: argparse.Namespace, labels: tuple[str, ...]) -> Iterator[Callable[[WindowResult], None]]:
    """Rotating files in --out-dir (the appliance), else one stream (--out or stdout)."""
    from ser_live.sinks import make_sink

    if args.out_dir is None:
        with output_stream(args.out) as stream:
            yield make_sink(args.format, stream, labels)
        return
    try:
        sink = RotatingFileSink(args.out_dir, args.format, labels, int(args.rotate_mb * 1e6), args.keep_files,
                                log=lambda line: print(f"ser-live: {line}", file=sys.stderr))
    except OSError as exc:
        raise OutputError(f"cannot write in {args.out_dir}: {exc.strerror}") from exc
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
    from ser_live.session import LiveSession

    session = LiveSession(load_classifier(args), settings_from(args), backlog=False)
    source = open_source(args, session.processor.cfg.sample_rate_hz)
    print(f"ser-live: {source.describe()}, model {session.classifier.metadata.name}", file=sys.stderr)
    with headless_sink(args, session.labels) as sink:
        session.sinks.append(sink)
        interrupted = False
        try:
            session.start(source, args.duration)
            session.wait()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            session.stop()
        if session.running:
            _exit_now(f"ser-live: the worker is stuck writing records; {session.stats.summary()}")
        if isinstance(session.error, BrokenPipeError):
            raise session.error
        print(f"ser-live: {session.stats.summary()}", file=sys.stderr)
        if session.error is not None:  # raised in here, so it is the error told (not a failed close after it)
            raise session.error
    return EXIT_INTERRUPTED if interrupted else 0


def _exit_now(message: str) -> None:
    """End the process without waiting for a worker stuck in a write (a full pipe nobody
    reads): Python's normal exit would wait on that write's lock and hang."""
    print(message, file=sys.stderr, flush=True)
    os._exit(EXIT_INTERRUPTED)


def cmd_analyze(args: argparse.Namespace) -> int:
    from ser_live.analyze import ClipReport, analyze_files, clip_settings
    from ser_live.audio_io import find_audio_files

    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:
        raise SerLiveError(f"not found: {', '.join(map(str, missing))}")
    files = find_audio_files(args.paths)
    if not files:
        raise SerLiveError("no audio files found in " + ", ".join(map(str, args.paths)))
    processor = new_processor(load_classifier(args), clip_settings(settings_from(args)))
    jobs = args.jobs or os.cpu_count() or 1
    counts: dict[str, int] = {}
    failed = 0
    if not args.json:
        _emit(f"{'file':<{TABLE_FILE_WIDTH}} {'emotion':<10} {'conf':>5} {'speech':>6} {'windows':>7}")
    with ProgressBar.for_files(files) as bar:
        for outcome in analyze_files(files, processor, jobs, bar.update if bar else None, args.adapt_by):
            if not isinstance(outcome, ClipReport):
                failed += 1
                _above_bar(bar, f"ser-live: skipped: {outcome}")
                continue
            key = outcome.label or "no speech"
            if outcome.uncertain:
                key = f"{key}?"  # a best guess below the model's confidence threshold, not a verdict
            counts[key] = counts.get(key, 0) + 1
            if args.json:
                line = json.dumps(outcome.to_record())
            else:
                conf = f"{outcome.confidence:.2f}" if outcome.confidence is not None else "-"
                line = (f"{table_cell(outcome.file, TABLE_FILE_WIDTH)} {key:<10} {conf:>5} "
                        f"{outcome.speech_ratio:>6.0%} {outcome.windows:>7}")
            _emit(line)
    if failed == len(files):
        raise SerLiveError("the file could not be read" if failed == 1 else f"none of the {failed} files could be read")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    done = len(files) - failed
    print(f"ser-live: {done} file{'' if done == 1 else 's'} analysed ({summary}); {failed} unreadable", file=sys.stderr)
    return 0


def _emit(line: str) -> None:
    """One line of analyze's output on stdout, at once (a reader sees each file as it is done)."""
    from ser_live.sinks import writing

    with writing(sys.stdout):
        print(line, flush=True)


def _above_bar(bar: ProgressBar | None, message: str) -> None:
    if bar is not None:
        bar.clear()
    print(message, file=sys.stderr, flush=True)


def table_cell(text: str, width: int) -> str:
    """``text`` in exactly ``width`` terminal columns: control characters (a newline in a file
    name) shown escaped, wide characters counted as two, the start cut off if too long."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    columns = [2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text]
    if sum(columns) > width:
        kept, used = len(text), 3
        while kept > 0 and used + columns[kept - 1] <= width:
            kept -= 1
            used += columns[kept]
        text, columns = "..." + text[kept:], [1, 1, 1, *columns[kept:]]
    return text + " " * (width - sum(columns))


class ProgressBar:
    """A one-line bar on stderr (a terminal only) for seconds of audio analysed; redrawn in place."""

    WIDTH = 30
    MIN_SECONDS = 60.0  # less audio, in fewer files, is done before a bar would help
    MIN_FILES = 10

    def __init__(self, total_s: float, files: int) -> None:
        self.total_s = max(total_s, 1e-9)
        self.files = files
        self._shown = ""

    @classmethod
    @contextlib.contextmanager
    def for_files(cls, files: list[Path]) -> Iterator[ProgressBar | None]:
        """A bar when stderr is a terminal and there is enough to analyse, else None."""
        import soundfile

        if not sys.stderr.isatty():
            yield None
            return
        total_s = 0.0
        for path in files:  # header reads only; files only audioread decodes count as 0
            with contextlib.suppress(Exception):
                total_s += soundfile.info(str(path)).duration
        if total_s < cls.MIN_SECONDS and len(files) < cls.MIN_FILES:
            yield None
            return
        bar = cls(total_s, len(files))
        try:
            yield bar
        finally:
            bar.clear()

    def update(self, done_s: float) -> None:
        fraction = min(1.0, done_s / self.total_s)
        filled = round(fraction * self.WIDTH)
        text = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%} of {self.total_s / 60:.1f} min audio"
        if text != self._shown:
            sys.stderr.write("\r" + text)
            sys.stderr.flush()
            self._shown = text

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * len(self._shown) + "\r")
            sys.stderr.flush()
            self._shown = ""


def cmd_gui(args: argparse.Namespace) -> int:
    from ser_live.gui.app import run_app

    return run_app(args)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Every way a run ends becomes an exit status: 0 done, 2 with one line on stderr for
    anything that went wrong (a user's mistake, a device lost, a disk full, or a bug), 130
    interrupted, and a quiet 141 when the reader of our output went away (``| head``)."""
    args = parse_args(argv)
    handle_stop_signals(_interrupt)
    try:
        with filtered_native_stderr():
            return _run(args)
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the promise is one line, whatever it was
        print(f"ser-live: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR


def _run(args: argparse.Namespace) -> int:
    if args.list_devices:
        return cmd_list_devices()
    if args.command == "analyze":
        return cmd_analyze(args)
    if args.headless:
        return cmd_headless(args)
    return cmd_gui(args)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail again on the closed pipe
    (Python would print 'Exception ignored ... BrokenPipeError')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
