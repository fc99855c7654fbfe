"""Whole-file analysis: run each file through the same processor the live app uses and
summarise it. A clip's emotion is the mean of its speech windows' probabilities; a clip with
no speech window says so instead of guessing.

A file is streamed through the processor in blocks (decoded, mixed down and resampled block by
block, as the live path does), so memory does not grow with its length. Many files may be
analysed by several processes at once (:func:`analyze_files`); each loads the model once, and
the reports come back in the order the files were given, equal to those of a single process.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.adaptation import ADAPT_BY, SpeechMoments
from ser_live.audio_io import AudioFileReader, check_finite, to_mono
from ser_live.errors import AudioFileError
from ser_live.model import EmotionClassifier
from ser_live.processor import ProcessorSettings, StreamProcessor, WindowResult
from ser_live.resample import StreamResampler
from ser_live.workers import shared_value, worker_pool

BLOCK_S = 10.0  # decoded and processed at a time: memory is a few blocks, whatever the file's length
PROGRESS_POLL_S = 0.25

Progress = Callable[[float], None]  # told each block's length in seconds of audio


@dataclass
class ClipReport:
    file: str
    label: str | None
    confidence: float | None
    probs: dict[str, float] | None
    speech_ratio: float
    uncertain: bool  # confidence below the model's uncertain_below: the label is a best guess
    windows: int
    duration_s: float

    def to_record(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "uncertain": self.uncertain,
            "probs": None if self.probs is None else {k: round(v, 4) for k, v in self.probs.items()},
            "speech_ratio": round(self.speech_ratio, 3),
            "windows": self.windows,
            "duration_s": round(self.duration_s, 2),
        }


@dataclass
class _Tally:
    """The running sums a clip report needs, so no window's result is kept."""

    labels: tuple[str, ...]
    windows: int = 0
    speech_windows: int = 0
    prob_sum: np.ndarray | None = None

    def add(self, results: list[WindowResult]) -> None:
        for result in results:
            self.windows += 1
            if result.probs is not None:
                self.speech_windows += 1
                probs = np.array([result.probs[x] for x in self.labels], dtype=np.float64)
                self.prob_sum = probs if self.prob_sum is None else self.prob_sum + probs


def _blocks(path: Path, rate_hz: int, progress: Progress | None) -> Iterator[np.ndarray]:
    """The file as float32 mono blocks at ``rate_hz``; resamplers freed when done."""
    reader = AudioFileReader(path)
    resampler = StreamResampler(reader.sample_rate_hz, rate_hz)
    try:
        block_frames = round(BLOCK_S * reader.sample_rate_hz)
        while len(block := reader.read(block_frames)):
            check_finite(block, path)
            yield resampler.process(to_mono(block))
            if progress is not None:
                progress(len(block) / reader.sample_rate_hz)
        yield resampler.process(np.zeros(0, np.float32), last=True)
    finally:
        reader.close()
        resampler.close()


def learn_speaker(path: Path, processor: StreamProcessor, progress: Progress | None = None) -> SpeechMoments:
    """The first pass over a file: its speech windows' statistics, no verdicts.
    Raises AudioFileError for unreadable files."""
    processor.reset(0.0)
    moments = processor.adapter.collect()
    try:
        for mono in _blocks(path, processor.cfg.sample_rate_hz, progress):
            processor.push(mono)
        processor.flush()
    finally:
        processor.adapter.stop_collecting()
    return moments


def _halved(progress: Progress | None) -> Progress | None:
    """Two passes over a file: each counts for half of its seconds in the progress bar."""
    return None if progress is None else lambda seconds: progress(seconds / 2)


def analyze_file(path: Path, processor: StreamProcessor, progress: Progress | None = None,
                 adapt_by: str = "file", speaker: SpeechMoments | None = None) -> ClipReport:
    """Raises AudioFileError for unreadable files. The processor must not smooth (smoothing_s=0).

    A session-adapting model normalizes by ``speaker`` (a folder's statistics) when given, else
    by the file's own (``adapt_by`` "file", a first pass) or by the speech heard so far ("stream")."""
    adapter = processor.adapter
    adapter.reset()
    adapter.freeze(None)
    two_passes = adapter.adapts and adapt_by != "stream"
    if two_passes:
        progress = _halved(progress)
        if speaker is None:
            speaker = learn_speaker(path, processor, progress)
        adapter.freeze(speaker)
    processor.reset(0.0)
    tally = _Tally(processor.labels)
    samples = 0
    for mono in _blocks(path, processor.cfg.sample_rate_hz, progress):
        samples += len(mono)
        tally.add(processor.push(mono))
    tally.add(processor.flush())
    label = confidence = probs = None
    if tally.prob_sum is not None:
        mean = tally.prob_sum / tally.speech_windows
        best = int(np.argmax(mean))
        label, confidence = processor.labels[best], float(mean[best])
        probs = {x: float(p) for x, p in zip(processor.labels, mean, strict=True)}
    return ClipReport(
        file=str(path),
        label=label,
        confidence=confidence,
        probs=probs,
        speech_ratio=tally.speech_windows / tally.windows if tally.windows else 0.0,
        uncertain=confidence is not None
        and confidence < processor.classifier.metadata.calibration.uncertain_below,
        windows=tally.windows,
        duration_s=samples / processor.cfg.sample_rate_hz,
    )


def clip_settings(settings: ProcessorSettings) -> ProcessorSettings:
    """Per-clip analysis averages windows itself, so smoothing across windows is turned off."""
    return dataclasses.replace(settings, smoothing_s=0.0)


Outcome = ClipReport | AudioFileError  # what one file gives: a report, or why it could not be read


Task = tuple[Path, str, SpeechMoments | None]  # a file, --adapt-by, its folder's speaker (or None)
Learned = SpeechMoments | AudioFileError  # a first pass over a file: its speech statistics, or why not


def _outcome(task: Task, processor: StreamProcessor, progress: Progress | None) -> Outcome:
    path, adapt_by, speaker = task
    try:
        return analyze_file(path, processor, progress, adapt_by, speaker)
    except AudioFileError as exc:
        return exc


def _learned(path: Path, processor: StreamProcessor, progress: Progress | None) -> Learned:
    try:
        return learn_speaker(path, processor, _halved(progress))
    except AudioFileError as exc:
        return exc


# -- worker processes ----------------------------------------------------------------------
_worker_processor: StreamProcessor | None = None
_worker_seconds: Any = None  # a shared double: seconds of audio analysed by all workers


def _worker_init(model_path: Path, settings: ProcessorSettings, seconds: Any) -> None:
    global _worker_processor, _worker_seconds
    # Ctrl-C and a closed terminal's SIGHUP reach the whole process group: the parent alone
    # handles them (and ends its workers, with SIGTERM), so they are reported as an interruption,
    # not as a pool whose workers died under it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _worker_processor = StreamProcessor(EmotionClassifier(model_path), settings)
    _worker_seconds = seconds


def _worker_progress(seconds: float) -> None:
    with _worker_seconds.get_lock():
        _worker_seconds.value += seconds


def _worker_analyze(task: Task) -> Outcome:
    assert _worker_processor is not None
    return _outcome(task, _worker_processor, _worker_progress)


def _worker_learn(path: Path) -> Learned:
    assert _worker_processor is not None
    return _learned(path, _worker_processor, _worker_progress)


class _Runner:
    """Runs per-file work in this process or in a pool of ``jobs`` processes (made once, used
    for both of ``--adapt-by folder``'s passes), results in input order, progress polled."""

    def __init__(self, processor: StreamProcessor, jobs: int, progress_seconds: Callable[[float], None] | None
                 ) -> None:
        self.processor = processor
        self.progress_seconds = progress_seconds
        self.done = 0.0
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        if jobs > 1:
            self.seconds = shared_value("d", 0.0)
            self.children_before = set(multiprocessing.active_children())
            self.pool = worker_pool(jobs, _worker_init,
                                    (processor.classifier.model_path, processor.settings, self.seconds))

    def _step(self, seconds: float) -> None:
        self.done += seconds
        if self.progress_seconds is not None:
            self.progress_seconds(self.done)

    def map(self, local: Callable[[Any, StreamProcessor, Progress | None], Any], worker: Callable[[Any], Any],
            items: list[Any]) -> Iterator[Any]:
        if self.pool is None:
            for item in items:
                yield local(item, self.processor, self._step)
            return
        futures = [self.pool.submit(worker, item) for item in items]
        for future in futures:
            while True:
                try:
                    outcome = future.result(timeout=PROGRESS_POLL_S)
                    break
                except concurrent.futures.TimeoutError:
                    if self.progress_seconds is not None:
                        self.progress_seconds(self.seconds.value)
            if self.progress_seconds is not None:
                self.progress_seconds(self.seconds.value)
            yield outcome

    def close(self, finished: bool) -> None:
        if self.pool is None:
            return
        self.pool.shutdown(wait=finished, cancel_futures=True)
        if not finished:  # Ctrl-C, an error or a reader that stopped: do not wait for files in progress
            for child in set(multiprocessing.active_children()) - self.children_before:
                child.terminate()


def folder_speakers(paths: list[Path], learned: list[Learned]) -> dict[Path, SpeechMoments]:
    """Each readable file's folder's speech statistics: the sum over that folder's files."""
    folders: dict[Path, SpeechMoments] = {}
    for path, moments in zip(paths, learned, strict=True):
        if isinstance(moments, SpeechMoments):
            folder = path.parent
            folders[folder] = folders[folder].merge(moments) if folder in folders else moments
    return {path: folders[path.parent] for path in paths if path.parent in folders}


def analyze_files(
    paths: list[Path], processor: StreamProcessor, jobs: int, progress_seconds: Callable[[float], None] | None = None,
    adapt_by: str = ADAPT_BY[0],
) -> Iterator[Outcome]:
    """Each file's outcome, in the order given. With ``jobs`` > 1, that many processes analyse
    files at once (each with its own copy of ``processor``'s model and settings); the outcomes
    are those one process would give. ``progress_seconds`` is called now and then with the
    seconds of audio analysed so far. ``adapt_by`` (``ADAPT_BY``) says where a session-adapting
    model learns each file's speaker."""
    runner = _Runner(processor, min(jobs, len(paths)), progress_seconds)
    finished = False
    try:
        speakers: dict[Path, SpeechMoments] = {}
        if adapt_by == "folder" and processor.adapter.adapts:
            speakers = folder_speakers(paths, list(runner.map(_learned, _worker_learn, paths)))
        tasks = [(path, adapt_by, speakers.get(path)) for path in paths]
        yield from runner.map(_outcome, _worker_analyze, tasks)
        finished = True
    finally:
        runner.close(finished)
