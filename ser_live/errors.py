"""Errors a user can cause and fix: the CLI prints them as one line, without a traceback."""


class SerLiveError(Exception):
    """Base class for problems caused by input the user controls (files, devices, models)."""


class ModelError(SerLiveError):
    """A model file or its metadata is missing, unreadable or inconsistent."""


class AudioFileError(SerLiveError):
    """An audio file cannot be read or decoded."""


class DeviceError(SerLiveError):
    """An audio device is unknown, unusable, or disappeared while in use."""
