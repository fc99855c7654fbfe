"""The synchronous per-hop computation: chunking, gating, end of input, agreement with offline."""

from __future__ import annotations

import numpy as np
import pytest

from ser_live.adaptation import SessionNormalizer
from ser_live.audio_io import load_audio
from ser_live.features import window_starts
from ser_live.frontend import offline_front_end
from ser_live.gate import GateConfig
from ser_live.processor import FRONT_END_CHUNK_S, ProcessorSettings, StreamProcessor
from ser_live.vad import SpeechDetector
from tests.conftest import assert_same_verdicts, fixture_clips

RAW = ProcessorSettings(smoothing_s=0.0)


def comparable(results: list) -> list[dict]:
    """Records without the timing fields, which measure the machine, not the audio."""
    return [{k: v for k, v in r.to_record().items() if k != "latency_ms"} for r in results]


@pytest.fixture(scope="module")
def clip(classifier) -> np.ndarray:  # noqa: ANN001
    return load_audio(fixture_clips()[0], classifier.features.sample_rate_hz)


@pytest.mark.parametrize("chunk", [160, 320, 441, 1024, 8000, 12345])
def test_chunk_size_never_changes_a_result(classifier, clip: np.ndarray, chunk: int) -> None:  # noqa: ANN001
    whole = StreamProcessor(classifier)
    expected = comparable(whole.push(clip) + whole.flush())
    chunked = StreamProcessor(classifier)
    got = []
    for start in range(0, len(clip), chunk):
        got += chunked.push(clip[start : start + chunk])
    assert comparable(got + chunked.flush()) == expected
    assert any(r["speech"] for r in expected)


def test_small_pushes_reach_the_front_end_in_chunks_and_the_tap_hears_every_sample(
        classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    """20 ms device blocks are gathered into FRONT_END_CHUNK_S pieces (or up to a window's end)
    before the filter, features and detector see them: their fixed cost per call made 25 small
    calls a hop cost three times one big one. The filtered audio the waveform gets is the same."""
    block = 320
    processor = StreamProcessor(classifier)
    tapped: list[np.ndarray] = []
    for start in range(0, len(clip), block):
        processor.push(clip[start : start + block], tapped.append)
        assert 0 <= processor.samples_seen - processor.samples_heard < FRONT_END_CHUNK_S * 16000
    whole = StreamProcessor(classifier)
    heard: list[np.ndarray] = []
    whole.push(clip, heard.append)
    assert len(tapped) < len(clip) / block / 4  # gathered: not one call per block
    filtered = np.concatenate(tapped)
    assert np.array_equal(filtered, np.concatenate(heard)[: len(filtered)])
    assert processor.samples_heard - len(filtered) < classifier.features.hop_length  # the filter's partial block
    # the desktop app gathers one redraw's worth (30 ms): the waveform moves at every redraw
    redraw = StreamProcessor(classifier, ProcessorSettings(front_end_chunk_s=0.03))
    calls: list[np.ndarray] = []
    for start in range(0, len(clip), block):
        redraw.push(clip[start : start + block], calls.append)
        assert redraw.samples_seen - redraw.samples_heard < 0.03 * 16000
    assert len(tapped) < len(calls) <= len(clip) / block / 2 + len(clip) / 8000


def test_streaming_predictions_equal_offline_predictions(classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    cfg = classifier.features
    results = StreamProcessor(classifier, RAW).push(clip)
    analysed = offline_front_end(clip, cfg, SpeechDetector())
    normalizer = SessionNormalizer(cfg, classifier.metadata.adaptation, cfg.hop_s)  # per window, or adapting
    starts = list(window_starts(len(analysed.features), cfg))
    assert len(results) == len(starts)
    for result, start in zip(results, starts, strict=True):
        window = analysed.window(start, cfg)
        assert result.speech == window.is_speech(GateConfig())
        if result.speech:
            offline = classifier.predict(normalizer.normalize(window.features.logmel))
            np.testing.assert_allclose([result.probs[x] for x in classifier.labels], offline, atol=1e-6)
        assert result.t == pytest.approx((start * cfg.hop_length + cfg.window_samples) / cfg.sample_rate_hz, abs=0.011)


def test_a_microphone_all_but_off_needs_a_lower_gate_and_gets_it_between_windows(classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    """Speech 70 dB down reads as silence at the default level bar; lowering the bar mid-stream
    lets it through from the next window on."""
    speech = np.tile(clip, 2)
    quiet = (speech * 10 ** (-70 / 20)).astype(np.float32)
    half = len(quiet) // 2
    processor = StreamProcessor(classifier, RAW)
    before = processor.push(quiet[:half])
    assert before and not any(r.speech for r in before)
    processor.set_gate_level(-110.0)
    after = processor.push(quiet[half:])
    assert processor.settings.gate.min_level_db == -110.0 and any(r.speech for r in after)


def test_a_quiet_microphone_gets_the_same_verdicts_as_a_loud_one(classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    """With gain_cmvn or session_cmvn the model sees a window the same at any input level: speech 30 dB down,
    with the level bar 30 dB lower, gets hop for hop the verdicts it gets at full level. (Much
    further down the model's fixed ``log_floor`` starts to show next to the relative floor.)"""
    if classifier.features.normalization == "window_cmvn":
        pytest.skip(f"the model under test uses {classifier.features.normalization}, which is not gain-invariant")
    speech = np.tile(clip, 2)
    quiet = (speech * 10 ** (-30 / 20)).astype(np.float32)
    loud_gate = RAW.gate.min_level_db
    soft = ProcessorSettings(smoothing_s=0.0, gate=GateConfig(min_level_db=loud_gate - 30))
    assert_same_verdicts(StreamProcessor(classifier, RAW).push(speech), StreamProcessor(classifier, soft).push(quiet))


def test_short_clip_is_padded_at_end_of_input(classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    processor = StreamProcessor(classifier, RAW)
    loud = int(np.argmax(np.abs(clip)))
    short = clip[max(0, loud - 8000) : loud + 8000]
    assert processor.push(short) == []
    (result,) = processor.flush()
    assert result.t == pytest.approx(2.0)
    assert processor.flush() == []


def test_smoothing_follows_its_time_constant(classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    raw = [r for r in StreamProcessor(classifier, RAW).push(clip) if r.speech]
    smooth = [r for r in StreamProcessor(classifier, ProcessorSettings(smoothing_s=1.0)).push(clip) if r.speech]
    keep = np.exp(-0.5 / 1.0)
    labels = classifier.labels
    expected = np.array([raw[0].probs[x] for x in labels])
    for r_raw, r_smooth in zip(raw, smooth, strict=True):
        if r_raw is not raw[0]:
            expected = keep * expected + (1 - keep) * np.array([r_raw.probs[x] for x in labels])
        np.testing.assert_allclose([r_smooth.probs[x] for x in labels], expected, atol=1e-5)


def test_other_hop_sizes(classifier, clip: np.ndarray) -> None:  # noqa: ANN001
    results = StreamProcessor(classifier, ProcessorSettings(hop_s=0.25)).push(clip)
    assert np.allclose(np.diff([r.t for r in results]), 0.25)
    with pytest.raises(ValueError, match="hop_s"):
        StreamProcessor(classifier, ProcessorSettings(hop_s=0.123))
