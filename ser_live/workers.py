"""Spawned worker processes that end with their parent, however it ends.

``analyze --jobs`` and training's parallel work (feature rendering, fold and final models) run
in spawned processes (no fork of a process that has threads; TensorFlow is not fork-safe either)
that wait on a queue their parent feeds. Ctrl-C and a closed terminal reach the whole process
group, but a parent killed alone (``kill PID``, the out-of-memory killer) tells them nothing: they
would wait, or work on, for good, each holding a model or a bank of features in memory (twelve
such training workers, 8 GB, were found once). So each worker watches its parent and exits when
it is gone.

A closed terminal's SIGHUP also reaches multiprocessing's resource tracker, a helper process that
ignores only SIGINT and SIGTERM: it died, was relaunched, and the new one printed a traceback for
every lock the old one had been told about. So it is started with SIGHUP ignored (an ignored
signal stays ignored across ``exec``); the parent's own handling is unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import resource_tracker
from typing import Any

PARENT_POLL_S = 1.0


def _exit_with_parent(parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """A worker's initializer: a daemon thread that ends the process once ``parent`` is gone (the
    worker is then re-parented, so its parent id changes), then the caller's own initializer."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _start_resource_tracker() -> None:
    """The resource tracker, started (if it is not running yet) deaf to SIGHUP."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


def shared_value(typecode: str, value: Any) -> Any:
    """A ``multiprocessing.Value`` for a :func:`worker_pool`'s initializer (from the pool's context)."""
    _start_resource_tracker()
    return multiprocessing.get_context("spawn").Value(typecode, value)


def worker_pool(processes: int, initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """``processes`` spawned workers that end with this process (``initializer(*initargs)`` runs
    in each, as ``ProcessPoolExecutor``'s would; shared values for it come from :func:`shared_value`)."""
    _start_resource_tracker()
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(), initializer, initargs))
