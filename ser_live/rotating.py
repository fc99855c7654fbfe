"""Records into a folder of rotating files, for a headless appliance that runs for months.

Why: on a Raspberry Pi without a screen the records go to an SD card, not a terminal. One file that
grows forever fills the card and cannot be copied off while it is written; so each run (and each
restart by the service manager) starts a new file, a file that reaches ``max_bytes`` is closed and
the next one opened, and only the newest ``keep_files`` of the format are kept. Names sort in time
order (UTC start time, then a sequence number), so pruning is a sort. Each new file is announced
through ``log``, one line, which under systemd lands in the journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ser_live.errors import OutputError
from ser_live.processor import WindowResult
from ser_live.sinks import CsvSink, JsonLinesSink, make_sink

FILE_PREFIX = "ser-live-"
DEFAULT_ROTATE_MB = 10.0
DEFAULT_KEEP_FILES = 30


class RotatingFileSink:
    """A JSON-lines or CSV sink that writes ``DIR/ser-live-<UTC start>-<n>.<fmt>`` files in turn."""

    def __init__(
        self,
        folder: Path,
        fmt: str,
        labels: tuple[str, ...],
        max_bytes: int,
        keep_files: int,
        log: Callable[[str], None],
    ) -> None:
        if max_bytes <= 0 or keep_files < 1:
            raise ValueError("rotation needs max_bytes > 0 and keep_files >= 1")
        self.folder = folder
        self.fmt = fmt
        self.labels = labels
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self.log = log
        self._started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._sequence = 0
        self._stream: TextIO | None = None
        self._sink: JsonLinesSink | CsvSink | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self._open_next()

    @property
    def path(self) -> Path:
        """The file being written."""
        assert self._stream is not None
        return Path(self._stream.name)

    def __call__(self, result: WindowResult) -> None:
        assert self._sink is not None and self._stream is not None
        self._sink(result)
        if self._stream.tell() >= self.max_bytes:
            self._open_next()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = self._sink = None

    def _open_next(self) -> None:
        """Close the current file and start the next. A folder that vanished or cannot take a
        new file (removed, unmounted, out of inodes) is an OutputError that names it."""
        try:
            self.close()
            while True:  # a restart within the same second must not overwrite the previous run's file
                self._sequence += 1
                path = self.folder / f"{FILE_PREFIX}{self._started}-{self._sequence:04d}.{self.fmt}"
                if not path.exists():
                    break
            self._stream = path.open("w", newline="")
            self._sink = make_sink(self.fmt, self._stream, self.labels)
            self._prune()
        except OSError as exc:
            raise OutputError(f"cannot write records in {self.folder}: {exc.strerror or exc}") from exc
        self.log(f"writing {path}")

    def _prune(self) -> None:
        files = sorted(self.folder.glob(f"{FILE_PREFIX}*.{self.fmt}"))
        for old in files[: -self.keep_files]:
            old.unlink(missing_ok=True)
