"""Training side of ser-live: datasets, augmentation, the CNN, int8 export, evaluation.

Run as ``python -m training <command>``; see ``python -m training --help``. TensorFlow is
imported only here (lazily, by the commands that need it), never by ``ser_live``.
"""

from ser_live.errors import SerLiveError


class TrainingError(SerLiveError):
    """A user mistake in a training command (bad data folder, unknown label, bad option)."""
