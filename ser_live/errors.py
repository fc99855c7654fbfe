"""Errors a user can cause and fix: the CLI prints them as one line, without a traceback."""

import signal
from collections.abc import Callable
from typing import Any

EXIT_INTERRUPTED = 130  # ended early on purpose (Ctrl-C or a stop signal), cleanly
# Signals that end a run as cleanly as Ctrl-C (records flushed, a recording closed, the summary
# printed): a service manager's SIGTERM, and the SIGHUP of a terminal closed under a running
# app, whose default action killed the process on the spot and left a recording's WAV unclosed.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def handle_stop_signals(handler: Callable[[int, Any], None]) -> None:
    """Install ``handler`` for the stop signals, except one the caller's parent chose to ignore:
    ``nohup ser-live --headless ...`` must keep running when its terminal closes."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)


class SerLiveError(Exception):
    """Base class for problems caused by input the user controls (files, devices, models)."""


class ModelError(SerLiveError):
    """A model file or its metadata is missing, unreadable or inconsistent."""


class AudioFileError(SerLiveError):
    """An audio file cannot be read or decoded."""


class DeviceError(SerLiveError):
    """An audio device is unknown, unusable, or disappeared while in use."""


class OutputError(SerLiveError):
    """Records cannot be written (disk full, a closed file); a closed pipe stays BrokenPipeError."""


def one_line(exc: BaseException) -> str:
    """Any exception as the one line a user sees: a user error's own message; anything else
    (a bug) names its type, so a report of it can be traced."""
    if isinstance(exc, SerLiveError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
