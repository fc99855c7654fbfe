"""The pipeline put together from the command line's options: processor settings, classifier,
processor and audio source. The headless command, ``analyze`` and the desktop app all build
theirs here, so ``cli`` and ``gui`` import this module and never each other."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ser_live.errors import SerLiveError
from ser_live.gate import GateConfig
from ser_live.model import EmotionClassifier
from ser_live.processor import DEFAULT_SMOOTHING_S, LOW_POWER_HOP_S, ProcessorSettings, StreamProcessor

if TYPE_CHECKING:
    from ser_live.capture import FileSource, MicrophoneSource


def settings_from(args: argparse.Namespace) -> ProcessorSettings:
    """The processor settings the options ask for (checked when they were parsed)."""
    smoothing_s = DEFAULT_SMOOTHING_S if args.smoothing is None else args.smoothing
    gate = GateConfig() if args.gate_db is None else GateConfig(min_level_db=args.gate_db)
    hop_s = LOW_POWER_HOP_S if args.low_power and args.hop is None else args.hop
    return ProcessorSettings(hop_s=hop_s, smoothing_s=smoothing_s, gate=gate)


def load_classifier(args: argparse.Namespace) -> EmotionClassifier:
    """The model named with --model, or the shipped one."""
    return EmotionClassifier(args.model)


def new_processor(classifier: EmotionClassifier, settings: ProcessorSettings) -> StreamProcessor:
    """A processor; a hop the model's framing cannot produce is a user error."""
    try:
        return StreamProcessor(classifier, settings)
    except ValueError as exc:
        raise SerLiveError(str(exc)) from exc


def open_source(args: argparse.Namespace, model_rate_hz: int) -> FileSource | MicrophoneSource:
    """The file given with --input, else the input device (opened at a rate it supports)."""
    from ser_live.capture import FileSource, MicrophoneSource

    if args.input is not None:
        return FileSource(args.input, fast=args.fast)
    return MicrophoneSource(args.device, model_rate_hz, args.device_rate)
