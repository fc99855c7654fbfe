"""Training's worker processes end with their parent, however it ends: a killed ``cv`` or
``train`` must not leave workers behind holding gigabytes (training/workers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

# A parent with two workers, one busy (a task running) and one idle (waiting for the next task),
# that prints their pids and then waits to be killed.
PARENT = """
import os, sys, time
from training.workers import worker_pool
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


def test_workers_exit_when_their_parent_is_killed() -> None:
    workers: list[int] = []
    with subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True) as parent:
        try:
            workers = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
            assert len(workers) == 2 and not any(_gone(pid) for pid in workers)
            os.kill(parent.pid, signal.SIGKILL)  # nothing in the parent gets to clean up
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
