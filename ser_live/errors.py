"""Errors a user can cause and fix: the CLI prints them as one line, without a traceback."""


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
