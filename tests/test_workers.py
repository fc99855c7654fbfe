"""Worker processes (``analyze --jobs``, training's parallel work) end with their parent, however
it ends: a parent killed alone must not leave workers behind holding gigabytes (ser_live/workers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

from ser_live.audio_io import load_audio
from tests.conftest import REPO, fixture_clips

# A parent with two workers, one busy (a task running) and one idle (waiting for the next task),
# that prints their pids and then waits to be killed.
PARENT = """
import os, time
from ser_live.workers import worker_pool
pool = worker_pool(2)
pids = set()
while len(pids) < 2:
    pids.update(f.result() for f in [pool.submit(os.getpid) for _ in range(8)])
    time.sleep(0.05)
busy = pool.submit(time.sleep, 600)
print(*sorted(pids), flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _kill_parent_and_expect_no_workers(parent: subprocess.Popen, workers: list[int]) -> None:
    """SIGKILL ``parent`` (nothing in it gets to clean up): its ``workers`` must be gone within 20 s.
    Whatever happens, nothing is left running."""
    try:
        assert len(workers) == 2 and parent.poll() is None and not any(_gone(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(_gone(pid) for pid in workers), "a worker outlived its killed parent"
    finally:
        parent.kill()
        for pid in workers:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_workers_exit_when_their_parent_is_killed() -> None:
    with subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True) as parent:
        workers = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
        _kill_parent_and_expect_no_workers(parent, workers)


def _spawned_children(pid: int) -> list[int]:
    """``multiprocessing`` spawned workers whose parent is ``pid`` (from /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            continue
        if parent == pid and b"multiprocessing.spawn" in command:
            found.append(int(proc.name))
    return found


def test_analyze_workers_exit_when_analyze_is_killed(model_path: Path, tmp_path: Path) -> None:
    """``ser-live analyze --jobs 2`` killed alone (``kill -9 PID``), mid-way through two long files:
    its workers go too."""
    speech = np.concatenate([load_audio(path, 16000) for path in fixture_clips()])
    files = []
    for name in ("a", "b"):
        files.append(tmp_path / f"{name}.wav")
        soundfile.write(files[-1], np.tile(speech, 30), 16000)
    cmd = [sys.executable, "-m", "ser_live", "--model", str(model_path), "analyze", "--jobs", "2", *map(str, files)]
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as parent:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            workers = _spawned_children(parent.pid)
            time.sleep(0.1)
        _kill_parent_and_expect_no_workers(parent, workers)
