"""Reading audio files into the one internal format: float32 mono at the model's rate."""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.errors import AudioFileError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a", ".opus")
NEEDS_FFMPEG = (".m4a",)  # the rest libsndfile reads
# What a file may claim in its header. Beyond this it is damaged or not meant for us, and taking
# it at its word would size buffers by it (10 s of ring at 4 GHz, or of 60000 channels).
FILE_RATE_RANGE_HZ = (1000, 768000)
MAX_FILE_CHANNELS = 64


def to_mono(block: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` block; 1-D input is returned as is."""
    block = np.asarray(block, dtype=np.float32)
    return block if block.ndim == 1 else block.mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Whole-signal resampling (for files); streams use :class:`ser_live.resample.StreamResampler`."""
    if from_hz == to_hz:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(audio, from_hz, to_hz, quality="HQ").astype(np.float32)


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Decode a whole file as ``(frames, channels)`` float32 plus its sample rate, or raise AudioFileError."""
    reader = AudioFileReader(path)
    try:
        data = reader.read()
    finally:
        reader.close()
    check_finite(data, reader.path)
    return data, reader.sample_rate_hz


def check_finite(block: np.ndarray, path: Path) -> None:
    """A float file may hold NaN or Inf samples; they would poison every window they touch."""
    if not np.isfinite(block).all():
        raise AudioFileError(f"{path}: the file holds invalid (non-finite) samples")


def check_readable(path: Path) -> None:
    """Raise AudioFileError naming why ``path`` is not a file to read: missing, a folder, a
    FIFO or device, a symlink loop, no permission (each its own reason, not all 'not found')."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioFileError(f"audio file not found: {path}") from None
    except OSError as exc:  # ELOOP (a symlink loop), EACCES on a parent folder, ENAMETOOLONG, ...
        raise AudioFileError(f"cannot open {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise AudioFileError(f"{path} is a folder, not an audio file")
    if not stat.S_ISREG(mode):
        raise AudioFileError(f"{path} is not a regular file (a FIFO or a device?); give a file")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"cannot open {path}: permission denied")


@functools.cache
def decoders() -> tuple[type, ...]:
    """audioread's decoder for what libsndfile lacks: ffmpeg, if it is on the PATH (checked once).

    Not audioread's standard-library reader: it reads only WAV, AIFF and AU, which libsndfile
    reads better, so it would only ever see files libsndfile found broken, and it leaves the file
    of some (an empty one) open."""
    from audioread import ffdec

    return (ffdec.FFmpegAudioFile,) if ffdec.available() else ()


class _AudioreadStream:
    """Formats libsndfile lacks (m4a), decoded by ffmpeg through audioread block by block as they
    are read: an hour-long podcast is 1.3 GB of 16-bit PCM at 44.1 kHz stereo, more than a Pi has
    to hold it whole."""

    def __init__(self, path: Path, first_error: Exception) -> None:
        self.path = path
        if not decoders():
            hint = "; install ffmpeg to read this format" if path.suffix.lower() in NEEDS_FFMPEG else ""
            raise AudioFileError(f"{path}: cannot decode audio ({first_error}){hint}")
        try:
            import audioread

            self._source = audioread.audio_open(str(path), backends=list(decoders()))
        except Exception as exc:  # audioread raises a zoo of backend errors; all mean "unreadable"
            raise AudioFileError(f"{path}: cannot decode audio ({first_error})") from exc
        self.sample_rate_hz, self.channels = int(self._source.samplerate), int(self._source.channels)
        self._blocks = iter(self._source)
        self._pending = b""

    def _next_block(self) -> bytes | None:
        """The decoder's next block of 16-bit PCM bytes, or None at the end."""
        try:
            return next(self._blocks)
        except StopIteration:
            return None
        except Exception as exc:  # data corrupt past the header
            raise AudioFileError(f"{self.path}: cannot decode audio ({exc})") from exc

    def has_audio(self) -> bool:
        """Decode until there is a frame to give, or the file ends (then False): an empty file,
        or one corrupt from its start, fails at open rather than halfway through an analysis."""
        while len(self._pending) < 2 * self.channels:
            block = self._next_block()
            if block is None:
                return False
            self._pending += block
        return True

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames (-1: all that is left) as (frames, channels) float32."""
        frame_bytes = 2 * self.channels
        want = None if frames < 0 else frames * frame_bytes
        parts, have = [self._pending], len(self._pending)
        while want is None or have < want:
            block = self._next_block()
            if block is None:
                break
            parts.append(block)
            have += len(block)
        raw = b"".join(parts)
        cut = have if want is None else min(want, have)
        cut -= cut % frame_bytes
        self._pending = raw[cut:]
        pcm = np.frombuffer(raw[:cut], dtype="<i2").astype(np.float32) / np.float32(32768.0)
        return pcm.reshape(-1, self.channels)

    def close(self) -> None:
        self._source.close()  # stops a decoder subprocess (ffmpeg) a reader left early


def _libsndfile(sf: Any) -> tuple[Any, Any, Any] | None:
    """python-soundfile's own libsndfile binding, its FFI and the open file's handle, or None
    for a python-soundfile without them (then its public API does the job, more slowly)."""
    import soundfile

    snd, ffi, handle = getattr(soundfile, "_snd", None), getattr(soundfile, "_ffi", None), getattr(sf, "_file", None)
    return None if snd is None or ffi is None or handle is None else (snd, ffi, handle)


def _read_floats(sf: Any, out: np.ndarray) -> int:
    """libsndfile's ``sf_readf_float`` into ``out`` (C-ordered float32 frames x channels).

    python-soundfile wraps every read of a seekable file in a ``tell()`` and a ``seek()`` to keep
    its own position, and for FLAC an absolute seek makes libsndfile's decoder search for the
    frame again: on a Pi 4 that was 19 M instructions per 0.5 s hop of replay, a third of the
    whole count (docs/raspberry-pi.md). So the reader, which counts its frames itself, calls
    libsndfile through python-soundfile's own binding; its public ``read`` is the fallback."""
    native = _libsndfile(sf)
    if native is None:
        return len(sf.read(out=out))
    snd, ffi, handle = native
    got = int(snd.sf_readf_float(handle, ffi.cast("float *", ffi.from_buffer(out)), len(out)))
    error = snd.sf_error(handle)
    if error:
        raise RuntimeError(ffi.string(snd.sf_error_number(error)).decode("utf-8", "replace"))
    return got


SFC_SET_UPDATE_HEADER_AUTO = 0x1061  # libsndfile's sndfile.h; python-soundfile does not export it


def keep_header_current(sf: Any) -> None:
    """Have libsndfile rewrite the header of ``sf`` (open for writing) after every write.

    A WAV's header says how much audio follows, and libsndfile fills it in at close. A recording
    cut short, by a crash, ``kill -9`` or a Pi's power cut, kept its audio but said 0 frames:
    sox reads 0 s of it and Python's ``wave`` refuses it. Rewriting the few header bytes with each
    block keeps every recording readable up to its last block."""
    native = _libsndfile(sf)
    if native is not None:
        snd, ffi, handle = native
        snd.sf_command(handle, SFC_SET_UPDATE_HEADER_AUTO, ffi.NULL, 1)


class AudioFileReader:
    """A file read block by block, so replaying hours of audio keeps memory flat.

    libsndfile formats stream from disk, m4a from ffmpeg. Opening checks the file (and decodes
    the first block of an m4a), so an unreadable one fails before anything starts.
    """

    def __init__(self, path: Path | str) -> None:
        import soundfile

        self.path = Path(path)
        check_readable(self.path)
        self._file: soundfile.SoundFile | None = None
        self._stream: _AudioreadStream | None = None
        self._offset = 0
        try:
            self._file = soundfile.SoundFile(str(self.path))
            self.sample_rate_hz, self.channels, frames = self._file.samplerate, self._file.channels, self._file.frames
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            self._stream = _AudioreadStream(self.path, exc)
            self.sample_rate_hz, self.channels = self._stream.sample_rate_hz, self._stream.channels
            frames = -1  # unknown until decoded
        problem = None
        if not FILE_RATE_RANGE_HZ[0] <= self.sample_rate_hz <= FILE_RATE_RANGE_HZ[1]:
            low, high = FILE_RATE_RANGE_HZ
            problem = f"a sample rate of {self.sample_rate_hz} Hz is outside {low}-{high} Hz"
        elif not 1 <= self.channels <= MAX_FILE_CHANNELS:
            problem = f"{self.channels} channels (at most {MAX_FILE_CHANNELS} are read)"
        else:
            if self._stream is not None:
                try:
                    frames = int(self._stream.has_audio())
                except AudioFileError:
                    self.close()
                    raise
            if frames == 0:
                problem = "the file holds no audio"
        if problem:
            self.close()
            raise AudioFileError(f"{self.path}: {problem}")

    def read(self, frames: int = -1) -> np.ndarray:
        """Up to ``frames`` frames (-1: all that is left) as (frames, channels) float32; empty at
        the end of the file."""
        if self._stream is not None:
            return self._stream.read(frames)
        assert self._file is not None
        left = max(self._file.frames - self._offset, 0)
        out = np.empty((left if frames < 0 else min(frames, left), self.channels), dtype=np.float32)
        try:
            got = _read_floats(self._file, out)
        except RuntimeError as exc:  # libsndfile's error for data corrupt past the header
            raise AudioFileError(f"{self.path}: cannot decode audio ({exc})") from exc
        self._offset += got
        return out[:got]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._stream is not None:
            self._stream.close()


def load_audio(path: Path | str, sample_rate_hz: int) -> np.ndarray:
    """A file as float32 mono at ``sample_rate_hz``."""
    data, rate = read_audio(path)
    return resample(to_mono(data), rate, sample_rate_hz)


def find_audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, and audio files found recursively in folders, sorted within each folder."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            found.append(path)
    return found
