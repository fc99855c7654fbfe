"""The live pipeline: source -> ring buffer -> worker (resample, features, gate, model,
smoothing) -> sinks.

Thread roles:
- the audio callback (PortAudio's thread, or the file replay thread) only copies into the
  ring buffer and counts overflows; it never blocks;
- the worker thread (this module) may block: it waits for a hop of new samples, computes, and
  hands each result to the sinks;
- a GUI thread, if any, never waits on the worker: it drains what a sink collected and peeks
  at ``recent_audio`` / ``audio_since`` on a timer.

The worker is paced by samples, not by a clock. When it falls behind a real-time source it
jumps to the newest window and counts the hops it skipped.

Whatever stops the worker (the source's error, a sink that cannot write, a bug) is kept as the
exception object in ``Engine.error``, for each mode to report in its own way. Once ``stop()``
has returned, no sink is called again (a stale worker never writes into the next session), and
no path waits on the worker without a timeout: a sink stuck on a full pipe cannot hang Ctrl-C.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from ser_live.audio_io import to_mono
from ser_live.errors import DeviceError, SerLiveError
from ser_live.processor import StreamProcessor, WindowResult
from ser_live.resample import StreamResampler
from ser_live.ringbuffer import RingBuffer

POLL_S = 0.02
SILENT_DEVICE_TIMEOUT_S = 2.0
STARTUP_TIMEOUT_S = 5.0  # some PortAudio hosts (ALSA over PulseAudio) take ~1.6 s to deliver audio
JOIN_TIMEOUT_S = 3.0  # how long stopping waits for the worker; it polls every POLL_S unless a sink is stuck
WAVEFORM_SECONDS = 5.0

Sink = Callable[[WindowResult], None]
AudioSink = Callable[[np.ndarray], None]
ErrorT = TypeVar("ErrorT", bound=BaseException)


class AudioSource(Protocol):
    ring: RingBuffer
    sample_rate_hz: int
    channels: int
    realtime: bool
    overflows: int
    input_latency_s: float
    name: str

    @property
    def error(self) -> SerLiveError | None:
        """Why the source ended by itself, if it did (read once its ring is closed)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...


@dataclass
class EngineStats:
    windows: int = 0
    speech_windows: int = 0
    lost_samples: int = 0  # input samples (per channel, at the device's rate) overwritten before the worker read them
    skipped_hops: int = 0
    overflows: int = 0
    latency_ms_total: float = 0.0

    @property
    def mean_latency_ms(self) -> float:
        return self.latency_ms_total / self.windows if self.windows else 0.0

    def summary(self) -> str:
        return (
            f"windows: {self.windows} ({self.speech_windows} with speech), "
            f"lost input samples: {self.lost_samples}, skipped hops: {self.skipped_hops}, "
            f"overflows: {self.overflows}, mean latency: {self.mean_latency_ms:.1f} ms"
        )


def _without_traceback(exc: ErrorT) -> ErrorT:
    """``exc`` (caught in the worker), and the exceptions chained to it, without tracebacks.

    A traceback holds the frames it passed through, and each frame (through ``f_back``, back to
    the worker's own) holds this engine, and through it the source, its stream and ring, the
    processor and its buffers. Kept in ``Engine.error``, that is a reference cycle only Python's
    cyclic collector frees, and in the app it rarely runs: every lost device left megabytes
    behind. No mode prints a traceback (each reports the exception in one line), so dropping it
    loses nothing a user sees.
    """
    chained: BaseException | None = exc
    seen: set[int] = set()
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        chained.__traceback__ = None
        chained = chained.__cause__ or chained.__context__
    return exc


class Engine:
    def __init__(
        self,
        source: AudioSource,
        processor: StreamProcessor,
        sinks: list[Sink] | None = None,
        duration_s: float | None = None,
        audio_sinks: list[AudioSink] | None = None,
    ) -> None:
        """``sinks`` get each result, ``audio_sinks`` each block of raw input as read (device
        rate and channels, e.g. for recording); both are called in the worker thread."""
        self.source = source
        self.processor = processor
        self.sinks = list(sinks or [])
        self.audio_sinks = list(audio_sinks or [])
        self.duration_s = duration_s
        self.stats = EngineStats()
        self.error: Exception | None = None
        self._resampler = StreamResampler(source.sample_rate_hz, processor.cfg.sample_rate_hz)
        self._waveform = RingBuffer(round(WAVEFORM_SECONDS * processor.cfg.sample_rate_hz), 1)
        self._stop = threading.Event()
        # Set by the worker as its very last step. Waiting is done on this, not Thread.join: a
        # Ctrl-C that interrupts Thread.join(timeout) can leave is_alive() False while the
        # thread still runs (CPython 3.11), and the worker would then be killed at exit
        # half-way, its resampler leaked.
        self._ended = threading.Event()
        self._sinks_lock = threading.Lock()  # held while a sink runs; stop() takes it to close the sinks
        self._sinks_open = True
        self._thread: threading.Thread | None = None

    # -- control (any thread) ------------------------------------------------------------
    def start(self) -> None:
        """Start the source and the worker thread."""
        self.source.start()
        self._thread = threading.Thread(target=self._work, name="ser-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker and the source. When this returns no sink will be called again,
        unless one is stuck in a call right now (then that call is its last)."""
        self._stop.set()
        self.source.stop()
        if self._sinks_lock.acquire(timeout=JOIN_TIMEOUT_S):
            self._sinks_open = False
            self._sinks_lock.release()
        else:
            self._sinks_open = False

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the worker; True when it has ended."""
        return self._thread is None or self._ended.wait(timeout)

    def run(self) -> EngineStats:
        """Start, then block until the input ends, the duration is reached, or Ctrl-C; never
        waits more than JOIN_TIMEOUT_S for a worker stuck in a sink after that."""
        self.start()
        try:
            while not self.join(timeout=0.1):
                pass
        finally:
            self.stop()
            self.join(timeout=JOIN_TIMEOUT_S)
        return self.stats

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._ended.is_set()

    def recent_audio(self, seconds: float = WAVEFORM_SECONDS) -> np.ndarray:
        """A copy of the last ``seconds`` (WAVEFORM_SECONDS at most) of audio at the model's rate
        (DC-filtered), oldest first."""
        return self._waveform.latest(round(seconds * self.processor.cfg.sample_rate_hz))[:, 0]

    def audio_since(self, position: int) -> tuple[np.ndarray, int]:
        """The audio of ``recent_audio`` after sample ``position`` of the stream (WAVEFORM_SECONDS
        of it at most), and the sample it reaches: a display copies only what is new."""
        audio, reached = self._waveform.since(position)
        return audio[:, 0], reached

    # -- worker thread -------------------------------------------------------------------
    def _work(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - kept, for the mode running us to report
            self.error = _without_traceback(exc)
        finally:
            self.stats.overflows = self.source.overflows
            self._resampler.close()  # native state freed now, not at interpreter exit
            self._stop.set()
            self._ended.set()

    def _loop(self) -> None:
        ring = self.source.ring
        cfg = self.processor.cfg
        device_hop = cfg.hop_s * self.source.sample_rate_hz
        last_data = time.monotonic()
        timeout_s = STARTUP_TIMEOUT_S
        while not self._stop.is_set():
            closed = ring.closed  # read before the ring: a block written just before closing is not missed
            if self.source.realtime and ring.available() > self.source.sample_rate_hz * cfg.window_s + 2 * device_hop:
                skipped = ring.skip_to_newest(round(self.source.sample_rate_hz * cfg.window_s))
                self.stats.skipped_hops += round(skipped / device_hop)
                self._restart_at(skipped)
            block, lost = ring.read_new()
            if lost:
                self.stats.lost_samples += lost
                self._restart_at(lost)
            if len(block):
                last_data = time.monotonic()
                timeout_s = SILENT_DEVICE_TIMEOUT_S
                self._process(block, last_data)
                if self.duration_s is not None and self.processor.samples_seen >= self.duration_s * cfg.sample_rate_hz:
                    return
            elif closed:
                if self.source.error is not None:
                    raise self.source.error
                now = time.monotonic()
                self._publish(self.processor.push(self._resampler.process(np.zeros(0, np.float32), last=True)), now)
                self._publish(self.processor.flush(), now)
                return
            else:
                if self.source.realtime and time.monotonic() - last_data > timeout_s:
                    raise DeviceError(f"no audio from '{self.source.name}' for {timeout_s:.0f} s (device gone?)")
                time.sleep(POLL_S)

    def _restart_at(self, gap_frames: int) -> None:
        """After a gap the next window must not straddle it: start a fresh window, keep time.
        The waveform gets the gap as silence, so what it shows stays at the stream time the
        speech bands are drawn at (a worker that fell seconds behind on a slow machine put them
        seconds away from the voice they marked)."""
        gap_s = gap_frames / self.source.sample_rate_hz
        rate = self.processor.cfg.sample_rate_hz
        dropped = self.processor.samples_seen - self.processor.samples_heard  # never shown: silence too
        self.processor.reset(self.processor.samples_seen / rate + gap_s)
        silence = min(round(gap_s * rate) + dropped, self._waveform.capacity)
        self._waveform.write(np.zeros((silence, 1), dtype=np.float32))

    def _process(self, block: np.ndarray, arrived: float) -> None:
        with self._sinks_lock:
            for audio_sink in self.audio_sinks:
                if not self._sinks_open:
                    return
                audio_sink(block)
        mono = self._resampler.process(to_mono(block))
        if self.duration_s is not None:
            remaining = round(self.duration_s * self.processor.cfg.sample_rate_hz) - self.processor.samples_seen
            mono = mono[: max(0, remaining)]
        self._publish(self.processor.push(mono, tap=self._show_audio), arrived)

    def _show_audio(self, filtered: np.ndarray) -> None:
        """The waveform and level meter show the audio as the detector and the model hear it."""
        self._waveform.write(filtered[:, None])

    def _publish(self, results: list[WindowResult], arrived: float) -> None:
        device_ms = self.source.input_latency_s * 1000.0
        for result in results:
            result.latency_ms = (time.monotonic() - arrived) * 1000.0 + device_ms
            self.stats.windows += 1
            self.stats.speech_windows += result.speech
            self.stats.latency_ms_total += result.latency_ms
            self.stats.overflows = self.source.overflows
            with self._sinks_lock:
                for sink in self.sinks:
                    if not self._sinks_open:  # checked per sink: one stuck in a call may return after stop()
                        return
                    sink(result)
