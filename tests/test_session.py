"""The session every mode runs on: a stale worker never writes into the next source's results,
the last block of a replay is never dropped, and the imports of ser_live/ have no circle."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import soundfile

from ser_live.audio_io import load_audio
from ser_live.capture import FileSource
from ser_live.engine import Engine
from ser_live.processor import ProcessorSettings, StreamProcessor, WindowResult
from ser_live.ringbuffer import RingBuffer
from ser_live.session import LiveSession
from tests.conftest import REPO, fixture_clips
from tests.test_engine import BacklogSource, speech

WAIT_S = 60  # a hang guard, not a timing claim


def test_a_stale_worker_never_writes_into_the_next_source(classifier) -> None:  # noqa: ANN001
    """Source A's worker is stuck in a sink (a full pipe, a slow disk) when the user switches
    to source B. Stopping A gives up waiting for it; once A's sink returns, A must hand out
    nothing more: the session's results are exactly B's."""
    entered, release = threading.Event(), threading.Event()

    def sink(result: WindowResult) -> None:
        if not entered.is_set():  # A's first result: stuck until released
            entered.set()
            release.wait(WAIT_S)

    session = LiveSession(classifier, ProcessorSettings(), [sink])
    session.start(BacklogSource(speech(6.0), 16000, 16000 * 10, realtime=False))  # 9 windows in one read
    assert entered.wait(WAIT_S)
    clip = fixture_clips()[0]
    session.start(FileSource(clip, fast=True))  # stops A: waits for its sink a while, then closes A's sinks
    release.set()
    session.wait()
    results = session.drain()
    audio = load_audio(clip, 16000)
    assert len(results) == (len(audio) - 32000) // 8000 + 1  # B's windows, and none of A's
    assert session.error is None


def test_a_session_nobody_drains_keeps_no_results(classifier) -> None:  # noqa: ANN001
    """Headless mode never drains: its session must not hold the GUI's backlog (4096 results,
    about 5 MB that a long run's RSS grew by)."""
    clip = fixture_clips()[0]
    expected = (len(load_audio(clip, 16000)) - 32000) // 8000 + 1
    for backlog in (False, True):
        written: list[WindowResult] = []
        session = LiveSession(classifier, ProcessorSettings(), [written.append], backlog=backlog)
        session.start(FileSource(clip, fast=True))
        session.wait()
        assert len(written) == expected
        assert len(session.drain()) == (expected if backlog else 0)


class RacingRing(RingBuffer):
    """Plays the replay thread's last move at the worst moment: right after the worker found
    the ring empty, the last block is written and the ring closed."""

    def __init__(self, audio: np.ndarray, last_frames: int) -> None:
        super().__init__(len(audio), 1)
        self.write(audio[:-last_frames, None])
        self._last = audio[-last_frames:, None]

    def read_new(self) -> tuple[np.ndarray, int]:
        block, lost = super().read_new()
        if not len(block) and self._last is not None:
            self.write(self._last)
            self._last = None
            self.close()
        return block, lost


def test_the_last_block_of_a_replay_is_never_dropped(classifier) -> None:  # noqa: ANN001
    audio = speech(6.25)
    source = BacklogSource(np.zeros(0, np.float32), 16000, 1, realtime=False)
    source.ring = RacingRing(audio, last_frames=800)  # one 50 ms replay block
    processor = StreamProcessor(classifier)
    results: list[WindowResult] = []
    Engine(source, processor, [results.append]).run()
    assert processor.samples_seen == len(audio)
    assert [r.t for r in results][-1] == 6.0


def _imports(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that the file imports anywhere (lazily inside functions too, and
    for type checking: each is a dependency all the same)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] == package)
    return found


def test_no_import_circle_in_ser_live() -> None:
    root = REPO / "ser_live"
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    graph = {name: {m for m in _imports(path, "ser_live") if m in modules and m != name}
             for name, path in modules.items()}
    graph = {name: deps - {"ser_live"} for name, deps in graph.items()}  # the package's __init__ imports nothing
    assert graph["ser_live.cli"] >= {"ser_live.assembly", "ser_live.gui.app"}  # the walk sees lazy imports
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            assert state.get(dep) != "open", "import circle: " + " -> ".join([*trail, name, dep])
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


CRASH_WHILE_RECORDING = """
import os, sys, time
from ser_live.capture import FileSource
from ser_live.model import EmotionClassifier
from ser_live.processor import ProcessorSettings
from ser_live.session import LiveSession

session = LiveSession(EmotionClassifier(sys.argv[1]), ProcessorSettings())
session.start(FileSource(sys.argv[2]), record_to=sys.argv[3])  # real time, like a microphone
deadline = time.monotonic() + 60
while session.recorder.frames_written < 16000 and time.monotonic() < deadline:
    time.sleep(0.05)
print(session.recorder.frames_written, flush=True)
os._exit(0)  # a crash, kill -9 or a power cut: nothing is closed
"""


def test_a_recording_cut_short_by_a_crash_still_reads_to_its_last_block(model_path: Path, tmp_path: Path) -> None:
    """libsndfile fills a WAV's length in at close: a recording that was never closed read as
    0 s in sox and was refused by Python's ``wave``. The header is now kept current."""
    wav = tmp_path / "take.wav"
    clip = fixture_clips()[0]
    proc = subprocess.run([sys.executable, "-c", CRASH_WHILE_RECORDING, str(model_path), str(clip), str(wav)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    written = int(proc.stdout.strip())
    assert written >= 16000
    with wave.open(str(wav)) as reader:
        assert reader.getnframes() == written
    assert soundfile.info(str(wav)).frames == written
