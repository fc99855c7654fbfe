"""The worker thread: pacing by samples, skipping ahead when behind, counting what was lost."""

from __future__ import annotations

import threading
import time

import numpy as np

from ser_live.audio_io import load_audio
from ser_live.capture import FileSource
from ser_live.engine import Engine
from ser_live.highpass import highpass
from ser_live.processor import StreamProcessor
from ser_live.ringbuffer import RingBuffer
from tests.conftest import fixture_clips


class BacklogSource:
    """A source whose audio is all in the ring before the worker starts: a worker that stalled."""

    channels = 1
    overflows = 0
    input_latency_s = 0.0
    error = None
    name = "backlog"

    def __init__(self, audio: np.ndarray, rate_hz: int, capacity: int, realtime: bool) -> None:
        self.sample_rate_hz = rate_hz
        self.realtime = realtime
        self.ring = RingBuffer(capacity, 1)
        self.ring.write(audio[:, None])
        self.ring.close()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


class SkippingSource(BacklogSource):
    """Real time: 2.5 s the worker keeps up with, then 4 s at once, as when it stalled for 4 s."""

    def __init__(self, audio: np.ndarray) -> None:
        super().__init__(np.zeros(0, np.float32), 16000, 16000 * 10, realtime=True)
        self.ring = RingBuffer(16000 * 10, 1)
        self._audio = audio
        self._thread = threading.Thread(target=self._play, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _play(self) -> None:
        self.ring.write(self._audio[:40000, None])
        while self.ring.available():
            time.sleep(0.005)
        self.ring.write(self._audio[40000:, None])
        self.ring.close()


def speech(seconds: float) -> np.ndarray:
    clips = np.concatenate([load_audio(p, 16000) for p in fixture_clips()[:4]])
    return clips[: round(seconds * 16000)]


def test_a_stalled_realtime_worker_jumps_to_the_newest_window(classifier) -> None:  # noqa: ANN001
    audio = speech(6.0)
    engine = Engine(BacklogSource(audio, 16000, 16000 * 10, realtime=True), StreamProcessor(classifier))
    results = []
    engine.sinks.append(results.append)
    stats = engine.run()
    assert stats.skipped_hops == 8  # 6 s waiting, one 2 s window kept: 4 s = 8 hops skipped
    assert [r.t for r in results] == [6.0]  # stream time stays true to the audio
    assert stats.windows == 1 and stats.lost_samples == 0


def test_the_waveform_keeps_stream_time_across_skipped_audio(classifier) -> None:  # noqa: ANN001
    """Skipped seconds are silence on the waveform, so the speech bands, drawn at stream time,
    stay under the voice they mark (before, the audio from before the skip slid up next to the
    new window, seconds away from its band)."""
    audio = speech(6.5)
    engine = Engine(SkippingSource(audio), StreamProcessor(classifier))
    results = []
    engine.sinks.append(results.append)
    stats = engine.run()
    assert stats.skipped_hops == 4 and [r.t for r in results] == [2.0, 2.5, 6.5]
    cfg = classifier.features
    before = highpass(audio[:40000], cfg.sample_rate_hz, cfg.hop_length, cfg.highpass_hz)[:40000]
    after = highpass(audio[72000:], cfg.sample_rate_hz, cfg.hop_length, cfg.highpass_hz)[:32000]
    tail = engine.recent_audio()  # the last 5 s: 1 s from before the skip, 2 s skipped, the 2 s window
    np.testing.assert_array_equal(tail[:16000], before[-16000:])
    assert not tail[16000:48000].any()
    np.testing.assert_array_equal(tail[48000:], after)


def test_frames_overwritten_before_reading_are_counted_as_dropped(classifier) -> None:  # noqa: ANN001
    audio = speech(6.0)
    engine = Engine(BacklogSource(audio, 16000, 16000 * 4, realtime=False), StreamProcessor(classifier))
    stats = engine.run()
    assert stats.lost_samples == 2 * 16000
    assert stats.windows == 5  # 4 s left: windows ending at 4.0 ... 6.0 s of stream time


def test_file_replay_processes_every_window_and_keeps_recent_audio(classifier) -> None:  # noqa: ANN001
    clip = fixture_clips()[0]
    source = FileSource(clip, fast=True)
    engine = Engine(source, StreamProcessor(classifier))
    results = []
    engine.sinks.append(results.append)
    stats = engine.run()
    audio = load_audio(clip, 16000)
    assert stats.windows == len(results) == (len(audio) - 32000) // 8000 + 1
    assert stats.lost_samples == stats.skipped_hops == 0
    # the waveform shows the audio as the model hears it: DC-filtered, in whole filter blocks
    cfg = classifier.features
    heard = highpass(audio, cfg.sample_rate_hz, cfg.hop_length, cfg.highpass_hz)
    heard = heard[: len(audio) // cfg.hop_length * cfg.hop_length]
    tail = engine.recent_audio()
    np.testing.assert_array_equal(tail[-len(heard) :], heard[-len(tail) :])
