"""Audio sources that fill a ring buffer: a PortAudio input device, or a file replayed through
the same path.

The PortAudio callback only copies the block into the ring and counts overflows: no logging,
allocation, feature math or Qt, as PortAudio requires of a callback.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.audio_io import AudioFileReader, check_finite
from ser_live.errors import AudioFileError, DeviceError
from ser_live.ringbuffer import RingBuffer

RING_SECONDS = 10.0
DEVICE_BLOCK_S = 0.02
# A replay wakes once per block; on this project's 2-core VM each wake-up is costly (20 ms
# blocks: 6.5% of a core for a real-time replay, 50 ms: 3-4%), and 50 ms still scrolls smoothly.
REPLAY_BLOCK_S = 0.05
PREFERRED_RATES_HZ = (48000, 44100, 32000, 22050, 16000)


def _ring_for(rate_hz: int, channels: int) -> RingBuffer:
    """Ring buffers hold seconds of audio, so a stalled worker has room to catch up."""
    return RingBuffer(round(RING_SECONDS * rate_hz), channels)


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise DeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from exc
    return sounddevice


# PortAudio streams open in this process; PortAudio may only be re-initialized while there are none.
_open_streams = 0
_streams_lock = threading.Lock()


def _rescan(sd: Any) -> None:
    """PortAudio lists devices once, when it is initialized (at import). Re-initializing it
    finds a microphone plugged in, or a sound server started, after launch. Terminating
    PortAudio closes every stream, so this is skipped while one is open."""
    with _streams_lock:
        if _open_streams == 0:
            sd._terminate()
            sd._initialize()


def list_input_devices() -> list[dict[str, Any]]:
    """The input devices present now (rescanned unless a stream is open)."""
    sd = _sounddevice()
    _rescan(sd)
    devices = []
    for index, info in enumerate(sd.query_devices()):
        if info["max_input_channels"] > 0:
            devices.append(
                {
                    "index": index,
                    "name": info["name"],
                    "channels": info["max_input_channels"],
                    "default_rate_hz": int(info["default_samplerate"]),
                    "hostapi": sd.query_hostapis(info["hostapi"])["name"],
                }
            )
    return devices


def resolve_device(spec: str | int | None) -> int | None:
    """An input device by index or by a case-insensitive substring of its name (None: default)."""
    devices = list_input_devices()
    if not devices:
        wanted = "" if spec is None else f" (asked for '{spec}')"
        raise DeviceError(f"no audio input device found{wanted}")
    if spec is None:
        return None
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if any(d["index"] == index for d in devices):
            return index
        raise DeviceError(f"no input device with index {index} (see ser-live --list-devices)")
    needle = str(spec).lower()
    exact = [d for d in devices if d["name"].lower() == needle]
    matches = exact or [d for d in devices if needle in d["name"].lower()]
    if len(matches) == 1:
        return int(matches[0]["index"])
    if not matches:
        raise DeviceError(f"no input device matches '{spec}' (see ser-live --list-devices)")
    names = ", ".join(f"{d['index']}: {d['name']}" for d in matches)
    raise DeviceError(f"'{spec}' matches several input devices ({names}); give an index")


def _weakly(method: Callable[..., None]) -> Callable[..., None]:
    """``method``, called through a weak reference to its object (a no-op once that is gone).

    A sounddevice stream sits in a reference cycle of its own (the closure it gives PortAudio
    refers back to the stream), so after it is closed only Python's cyclic collector frees it,
    and in the app that rarely runs. Given the source's bound methods, the stream would keep
    the source and its ring alive as long: megabytes left behind at every lost device."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args)

    return call


class MicrophoneSource:
    """Captures from a PortAudio input device at a rate it supports."""

    realtime = True

    def __init__(self, device: str | int | None, model_rate_hz: int, device_rate_hz: int | None = None) -> None:
        sd = _sounddevice()
        self.device = resolve_device(device)
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"no usable input device: {exc}") from exc
        self.name = str(info["name"])
        self.channels = max(1, min(2, int(info["max_input_channels"])))
        self.sample_rate_hz = self._pick_rate(sd, model_rate_hz, int(info["default_samplerate"]), device_rate_hz)
        self.ring = _ring_for(self.sample_rate_hz, self.channels)
        self.overflows = 0
        self.error: DeviceError | None = None
        self.input_latency_s = 0.0
        self._stopping = False
        self._stream: Any = None
        self._counted = False

    def _pick_rate(self, sd: Any, model_rate_hz: int, default_hz: int, requested_hz: int | None) -> int:
        """The model's rate if the device does it (no resampling), else one it supports; the
        worker resamples. A rate the user asked for is used or refused, never replaced."""
        candidates = (requested_hz,) if requested_hz else (model_rate_hz, default_hz, *PREFERRED_RATES_HZ)
        for rate in candidates:
            try:
                sd.check_input_settings(self.device, channels=self.channels, samplerate=rate, dtype="float32")
                return rate
            except (ValueError, sd.PortAudioError):
                continue
        tried = ", ".join(str(r) for r in dict.fromkeys(candidates))
        raise DeviceError(f"input device '{self.name}' does not support {tried} Hz")

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(indata)

    def _finished(self) -> None:
        if not self._stopping:
            self.error = DeviceError(f"input device '{self.name}' stopped delivering audio (unplugged?)")
        self.ring.close()

    def start(self) -> None:
        global _open_streams
        sd = _sounddevice()
        with _streams_lock:
            _open_streams += 1
            self._counted = True
        try:
            self._stream = sd.InputStream(
                device=self.device,
                channels=self.channels,
                samplerate=self.sample_rate_hz,
                dtype="float32",
                blocksize=round(DEVICE_BLOCK_S * self.sample_rate_hz),
                callback=_weakly(self._callback),
                finished_callback=_weakly(self._finished),
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self.stop()
            raise DeviceError(f"cannot open input device '{self.name}': {exc}") from exc
        self.input_latency_s = float(self._stream.latency)

    def stop(self) -> None:
        global _open_streams
        self._stopping = True
        if self._stream is not None:
            # closing a stream whose device vanished may fail; it is gone either way
            with contextlib.suppress(Exception):
                self._stream.close()
        with _streams_lock:
            if self._counted:
                _open_streams -= 1
                self._counted = False
        self.ring.close()

    def describe(self) -> str:
        return f"{self.name} @ {self.sample_rate_hz} Hz"


class FileSource:
    """Replays a file through the live path, in real time or as fast as the worker consumes it.

    Like a device, it delivers blocks at the file's own rate and channels; the worker mixes
    down and resamples, so a replay exercises exactly what live capture does.
    """

    overflows = 0
    input_latency_s = 0.0

    def __init__(self, path: Path | str, fast: bool = False) -> None:
        self.path = Path(path)
        self._reader = AudioFileReader(self.path)
        self.sample_rate_hz = self._reader.sample_rate_hz
        self.channels = self._reader.channels
        self.realtime = not fast
        self.ring = _ring_for(self.sample_rate_hz, self.channels)
        self.name = self.path.name
        self.error: AudioFileError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ser-file-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.ring.close()

    def describe(self) -> str:
        return f"file {self.name} ({'real time' if self.realtime else 'fast'})"

    def _run(self) -> None:
        block_frames = round(REPLAY_BLOCK_S * self.sample_rate_hz)
        started = time.monotonic()
        sent = 0
        try:
            while not self._stop.is_set():
                block = self._reader.read(block_frames)
                if not len(block):
                    break
                check_finite(block, self.path)
                sent += len(block)
                if self.realtime:
                    if self._stop.wait(max(0.0, started + sent / self.sample_rate_hz - time.monotonic())):
                        break
                    self.ring.write(block)
                elif not self.ring.write_waiting(block, self._stop):
                    break
        except AudioFileError as exc:
            self.error = exc
        finally:
            self._reader.close()
            self.ring.close()
