"""Where results go in headless mode: JSON lines or CSV, one record per hop.

A write that fails (disk full, a closed file) raises OutputError naming the destination; a
reader that went away (``| head``) stays BrokenPipeError, which the command ends on quietly.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from ser_live.errors import OutputError
from ser_live.processor import WindowResult

FORMATS = ("jsonl", "csv")


@contextmanager
def writing(stream: TextIO) -> Iterator[None]:
    """Around writes to ``stream``: OSError becomes OutputError naming it; BrokenPipeError stays."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        name = getattr(stream, "name", "the output")
        raise OutputError(f"cannot write records to {name}: {exc.strerror or exc}") from exc


class JsonLinesSink:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, result: WindowResult) -> None:
        with writing(self.stream):
            self.stream.write(json.dumps(result.to_record()) + "\n")
            self.stream.flush()


class CsvSink:
    """Flat columns: the record's scalars, then one ``p_<label>`` column per emotion (empty for silence)."""

    def __init__(self, stream: TextIO, labels: tuple[str, ...]) -> None:
        self.stream = stream
        self.labels = labels
        self._writer = csv.writer(stream)
        with writing(stream):
            self._writer.writerow(
                ["t", "speech", "label", "confidence", "uncertain", "level_db", "latency_ms",
                 *(f"p_{x}" for x in labels)]
            )

    def __call__(self, result: WindowResult) -> None:
        record = result.to_record()
        probs = record["probs"] or {}
        with writing(self.stream):
            self._writer.writerow(
                [record["t"], int(record["speech"]), record["label"] or "", record["confidence"] or "",
                 int(record["uncertain"]), record["level_db"], record["latency_ms"],
                 *(probs.get(x, "") for x in self.labels)]
            )
            self.stream.flush()


def make_sink(fmt: str, stream: TextIO, labels: tuple[str, ...]) -> JsonLinesSink | CsvSink:
    return CsvSink(stream, labels) if fmt == "csv" else JsonLinesSink(stream)
