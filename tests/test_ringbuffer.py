"""The SPSC ring buffer under a real concurrent writer and reader."""

from __future__ import annotations

import mmap
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_live.ringbuffer import RingBuffer


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(min_value=8, max_value=500),
    blocks=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=60),
    channels=st.integers(min_value=1, max_value=2),
)
def test_sequential_reads_return_the_stream_or_report_losses(capacity: int, blocks: list[int], channels: int) -> None:
    ring = RingBuffer(capacity, channels)
    counter = 0
    next_expected = 0
    for i, n in enumerate(blocks):
        ring.write(np.repeat(np.arange(counter, counter + n, dtype=np.float32)[:, None], channels, axis=1))
        counter += n
        if i % 3 == 2 or i == len(blocks) - 1:
            data, lost = ring.read_new()
            # what was not lost arrives in order, with no gaps and no repeats, and only the
            # frames older than one capacity can be lost
            expected = np.arange(next_expected + lost, counter, dtype=np.float32)
            np.testing.assert_array_equal(data, np.repeat(expected[:, None], channels, axis=1))
            assert len(data) <= capacity
            next_expected = counter
    assert ring.available() == 0


def test_concurrent_writer_and_reader_see_an_ordered_stream() -> None:
    ring = RingBuffer(4096, 1)
    total = 400_000

    def writer() -> None:
        for start in range(0, total, 256):
            ring.write(np.arange(start, min(start + 256, total), dtype=np.float32)[:, None])
        ring.close()

    thread = threading.Thread(target=writer)
    thread.start()
    received = 0
    lost_total = 0
    position = 0  # the stream index the next frame must carry
    while True:
        closed = ring.closed
        data, lost = ring.read_new()
        lost_total += lost
        position += lost  # a read may be all loss (the writer lapped us while we copied)
        if len(data):
            np.testing.assert_array_equal(data[:, 0], np.arange(position, position + len(data)))
            position += len(data)
            received += len(data)
        elif closed:
            break
    thread.join()
    assert received + lost_total == total == position


def test_waiting_writer_never_overwrites_unread_frames() -> None:
    ring = RingBuffer(1000, 1)
    stop = threading.Event()
    audio = np.arange(50_000, dtype=np.float32)[:, None]

    def writer() -> None:
        for start in range(0, len(audio), 320):
            ring.write_waiting(audio[start : start + 320], stop)
        ring.close()

    thread = threading.Thread(target=writer)
    thread.start()
    parts = []
    while True:
        closed = ring.closed
        data, lost = ring.read_new()
        assert lost == 0
        parts.append(data)
        if closed and not len(data):
            break
    thread.join()
    np.testing.assert_array_equal(np.concatenate(parts), audio)


def test_skip_to_newest_keeps_the_latest_frames() -> None:
    ring = RingBuffer(100, 1)
    ring.write(np.arange(80, dtype=np.float32)[:, None])
    assert ring.skip_to_newest(30) == 50
    data, lost = ring.read_new()
    assert lost == 0
    np.testing.assert_array_equal(data[:, 0], np.arange(50, 80))


def test_latest_peeks_without_consuming() -> None:
    ring = RingBuffer(10, 1)
    ring.write(np.arange(4, dtype=np.float32)[:, None])
    np.testing.assert_array_equal(ring.latest(6)[:, 0], [0, 0, 0, 1, 2, 3])
    ring.write(np.arange(4, 16, dtype=np.float32)[:, None])
    np.testing.assert_array_equal(ring.latest(10)[:, 0], np.arange(6, 16))
    assert ring.read == 0  # nothing consumed


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=64),
    written=st.integers(min_value=0, max_value=200),
    frames=st.integers(min_value=0, max_value=80),
)
def test_latest_is_the_newest_frames_wherever_the_ring_wraps(capacity: int, written: int, frames: int) -> None:
    ring = RingBuffer(capacity, 2)
    ring.write(np.repeat(np.arange(1, written + 1, dtype=np.float32)[:, None], 2, axis=1))
    wanted = min(frames, capacity)
    expected = np.arange(written - wanted + 1, written + 1, dtype=np.float32).clip(min=0)
    np.testing.assert_array_equal(ring.latest(frames), np.repeat(expected[:, None], 2, axis=1))


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=64),
    blocks=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=20),
)
def test_since_gives_what_is_new_and_the_newest_capacity_after_a_lap(capacity: int, blocks: list[int]) -> None:
    ring = RingBuffer(capacity, 1)
    position, written = 0, 0
    for n in blocks:
        ring.write(np.arange(written + 1, written + n + 1, dtype=np.float32)[:, None])
        written += n
        new, position_after = ring.since(position)
        assert position_after == written
        first = max(position, written - capacity)  # a lap loses what is older than the ring
        np.testing.assert_array_equal(new[:, 0], np.arange(first + 1, written + 1, dtype=np.float32))
        position = position_after
    assert ring.since(written + 5)[0].shape == (0, 1)  # a position from an older, longer ring: nothing
    assert ring.read == 0


def test_frames_are_pages_of_their_own() -> None:
    """A ring is made for every source, and every reconnect makes one: its frames are a
    mapping of their own, returned whole when it goes, never a hole in the C heap for smaller
    allocations to split (the app's RSS grew at each reconnect with nothing leaked)."""
    ring = RingBuffer(160000, 2)
    assert isinstance(ring._data.base, mmap.mmap)
    assert ring._data.flags.writeable and not ring._data.any()
