"""Voice-activity detection with Silero VAD: which 32 ms frames of the stream are speech.

A trained detector instead of hand-set thresholds: music, barking dogs, clocks, hum and noise
fooled the old loudness/pitch gate, and speech with a DC offset or without pauses was missed.
Silero VAD (MIT, ``models/vad/``) is run through onnxruntime in its "sequence" export: the same
per-frame probabilities as the streaming model, but a whole block of frames per call, with the
LSTM state carried from call to call. That keeps it well inside a hop's budget; the shipped file
also has its convolutions rewritten as one MatMul per layer over all the call's frames
(``scripts/vad_matmul.py``), about a third of the original's cost.

:class:`SpeechDetector` keeps its own state, so the live worker, file analysis and training all
feed it the same way. The frame grid is absolute (frame ``k`` covers samples
``[512k, 512k + 512)`` of the stream at 16 kHz), and the caller decides when the model runs
(:meth:`SpeechDetector.run`), so the batching, and with it every probability, does not depend
on how the audio arrived in chunks.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.errors import ModelError
from ser_live.resources import PACKAGE_DIR, VAD_MODEL, resource_path

VAD_SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: what the model was trained on
CONTEXT_SAMPLES = 64  # the tail of the previous frame, prepended to each frame
STATE_SHAPE = (1, 1, 128)


def default_vad_path() -> Path:
    """The shipped detector (``models/vad/``); a missing one is reported when it is loaded."""
    return resource_path(VAD_MODEL) or PACKAGE_DIR.parent / VAD_MODEL


@functools.cache
def _session(path: Path) -> Any:
    """An onnxruntime session on one thread: the worker already has a core's worth of work and
    a thread pool would fight the audio callback for the other.

    Loaded once per model file and shared by every detector in the process: a session is not
    changed by running it and its ``run`` may be called from several threads at once, while
    each :class:`SpeechDetector` keeps its own state. The app makes a detector per source
    (every device reconnect); loading the model each time put ~2 MB of onnxruntime's buffers
    on the C heap per reconnect, whose holes later allocations split (RSS grew with nothing
    leaked)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("onnxruntime is not installed: pip install onnxruntime") from exc
    if not path.is_file():
        raise ModelError(f"voice-activity model not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its graph-cleanup notices are not the user's business
    try:
        return ort.InferenceSession(os.fspath(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise ModelError(f"cannot load voice-activity model {path}: {str(exc).splitlines()[0]}") from exc


class SpeechDetector:
    """Per-frame speech probabilities of a 16 kHz float32 stream, with state between calls.

    :meth:`push` queues samples; :meth:`run` scores every complete frame queued so far in one
    model call and returns their probabilities. Call :meth:`run` at fixed stream positions (the
    processor does at each hop) and results are the same for any chunking.
    """

    def __init__(self, model_path: Path | str | None = None) -> None:
        self._session = _session(Path(model_path) if model_path else default_vad_path())
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_total = 0

    def push(self, samples: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])

    def run(self, gain: float = 1.0) -> np.ndarray:
        """Probabilities (float32, 0..1) of the complete frames pushed since the last run, heard
        ``gain`` times louder (the detector is level-sensitive; see ``frontend.vad_gain``)."""
        count = len(self._pending) // FRAME_SAMPLES
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        frames = self._pending[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
        batch = np.empty((count, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        batch[:, CONTEXT_SAMPLES:] = frames
        batch[0, :CONTEXT_SAMPLES] = self._context
        batch[1:, :CONTEXT_SAMPLES] = frames[:-1, -CONTEXT_SAMPLES:]
        if gain != 1.0:
            batch *= np.float32(gain)
        if not np.isfinite(batch).all():  # NaN would stay in the LSTM state for good
            np.nan_to_num(batch, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        probs, self._h, self._c = self._session.run(
            ["speech_probs", "hn", "cn"], {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        self._pending = self._pending[count * FRAME_SAMPLES :]
        self.frames_total += count
        return np.asarray(probs, dtype=np.float32).reshape(count)
