"""ser-live: real-time speech-emotion recognition from a microphone or a file."""

__version__ = "0.1.0"
