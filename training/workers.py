"""Worker processes for training's parallel work (feature rendering, fold and final models).

Workers are spawned (TensorFlow is not fork-safe) and wait on a queue their parent feeds. If the
parent is killed (``kill PID``, the out-of-memory killer), nothing tells them: they would wait, or
train on, for good, each holding a bank of features or a model in memory (twelve such workers,
8 GB, were found here once). So each worker watches its parent and exits when it is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_POLL_S = 1.0


def _exit_with_parent(parent: int) -> None:
    """A worker's initializer: a daemon thread that ends the process once ``parent`` is gone (the
    worker is then re-parented, so its parent id changes)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker_pool(processes: int) -> ProcessPoolExecutor:
    """``processes`` spawned workers that end with this process, however it ends."""
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
