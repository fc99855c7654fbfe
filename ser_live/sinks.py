"""Where results go in headless mode: JSON lines or CSV, one record per hop."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from ser_live.processor import WindowResult

FORMATS = ("jsonl", "csv")


class JsonLinesSink:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, result: WindowResult) -> None:
        self.stream.write(json.dumps(result.to_record()) + "\n")
        self.stream.flush()


class CsvSink:
    """Flat columns: the record's scalars, then one ``p_<label>`` column per emotion (empty for silence)."""

    def __init__(self, stream: TextIO, labels: tuple[str, ...]) -> None:
        self.stream = stream
        self.labels = labels
        self._writer = csv.writer(stream)
        self._writer.writerow(
            ["t", "speech", "label", "confidence", "uncertain", "level_db", "latency_ms", *(f"p_{x}" for x in labels)]
        )

    def __call__(self, result: WindowResult) -> None:
        record = result.to_record()
        probs = record["probs"] or {}
        self._writer.writerow(
            [record["t"], int(record["speech"]), record["label"] or "", record["confidence"] or "",
             int(record["uncertain"]), record["level_db"], record["latency_ms"],
             *(probs.get(x, "") for x in self.labels)]
        )
        self.stream.flush()


def make_sink(fmt: str, stream: TextIO, labels: tuple[str, ...]) -> JsonLinesSink | CsvSink:
    return CsvSink(stream, labels) if fmt == "csv" else JsonLinesSink(stream)
