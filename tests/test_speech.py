"""Only speech gets an emotion: each kind of input through the real detector (Silero VAD via
onnxruntime), the real DC filter and the shipped model, on committed fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from ser_live.analyze import clip_settings
from ser_live.audio_io import load_audio
from ser_live.errors import ModelError
from ser_live.frontend import offline_front_end
from ser_live.gate import GateConfig
from ser_live.processor import ProcessorSettings, StreamProcessor, WindowResult
from ser_live.vad import SpeechDetector
from tests.conftest import FIXTURES, fixture_clips
from training.impostors import IMPOSTORS, impostor
from training.speech_check import speaker_of, trim

RATE = 16000
ESC10 = sorted((FIXTURES / "esc10").rglob("*.ogg"))


@pytest.fixture(scope="module")
def processor(classifier) -> StreamProcessor:  # noqa: ANN001
    return StreamProcessor(classifier, clip_settings(ProcessorSettings()))


def run(processor: StreamProcessor, audio: np.ndarray) -> list[WindowResult]:
    processor.reset(0.0)
    return processor.push(audio) + processor.flush()


def verdict(results: list[WindowResult]) -> str | None:
    """A clip's emotion as ``analyze`` gives it: the mean of its speech windows, or none."""
    speech = [r.probs for r in results if r.probs is not None]
    if not speech:
        return None
    mean = {label: np.mean([p[label] for p in speech]) for label in speech[0]}
    return max(mean, key=mean.__getitem__)


@pytest.mark.parametrize("path", ESC10, ids=lambda p: p.parent.name)
def test_everyday_sounds_get_no_emotion(processor: StreamProcessor, path) -> None:  # noqa: ANN001
    results = run(processor, load_audio(path, RATE))
    assert len(results) >= 6
    assert not any(r.speech for r in results), [round(r.speech_ratio, 2) for r in results]


def test_esc10_fixtures_cover_every_class() -> None:
    assert len(ESC10) == 10 and len({p.parent.name for p in ESC10}) == 10


@pytest.mark.parametrize("kind", list(IMPOSTORS))
def test_synthetic_impostors_get_no_emotion(processor: StreamProcessor, kind: str) -> None:
    for seed in range(2):
        results = run(processor, impostor(kind, seed))
        assert results and not any(r.speech for r in results), (seed, [round(r.speech_ratio, 2) for r in results])


@pytest.mark.parametrize("kind", ["digital silence", "quiet room"])
def test_silence_is_not_speech(processor: StreamProcessor, kind: str, rng: np.random.Generator) -> None:
    n = 6 * RATE
    audio = np.zeros(n, np.float32) if kind == "digital silence" else (3e-4 * rng.standard_normal(n)).astype(np.float32)
    results = run(processor, audio)
    assert len(results) == 9 and not any(r.speech for r in results)
    assert all(r.label is None and r.probs is None for r in results)


def test_every_speech_fixture_has_a_speech_window(processor: StreamProcessor) -> None:
    for path in fixture_clips():
        assert any(r.speech for r in run(processor, load_audio(path, RATE))), path.name


def test_continuous_speech_is_speech_throughout(processor: StreamProcessor) -> None:
    """Each speaker's clips back to back with the pauses between them cut: >= 98% of windows."""
    by_speaker: dict[str, list[np.ndarray]] = {}
    for path in fixture_clips():
        by_speaker.setdefault(speaker_of(path), []).append(trim(load_audio(path, RATE), processor.cfg))
    assert len(by_speaker) == 2
    for speaker, parts in by_speaker.items():
        results = run(processor, np.concatenate(parts))
        share = np.mean([r.speech for r in results])
        assert len(results) >= 20 and share >= 0.98, (speaker, share)


def test_pauses_are_cut_through_a_dc_offset(processor: StreamProcessor) -> None:
    """SAVEE's DC_a03 sits on a DC offset of about 0.04: measured raw, its pauses read as sound
    and stayed in the continuous-speech check, which then blamed the detector for them."""
    audio = load_audio(FIXTURES / "savee" / "DC_a03.flac", RATE)
    assert abs(float(np.mean(audio))) > 0.02
    centred = audio - np.float32(np.mean(audio))
    assert abs(len(trim(audio, processor.cfg)) - len(trim(centred, processor.cfg))) <= 0.02 * RATE
    assert len(trim(audio, processor.cfg)) < 0.9 * len(audio)


@pytest.mark.parametrize("change", ["dc offset 0.05", "30 dB quieter"])
def test_dc_offset_and_a_quiet_microphone_change_no_verdict(processor: StreamProcessor, change: str) -> None:
    for path in fixture_clips():
        audio = load_audio(path, RATE)
        altered = audio + np.float32(0.05) if change == "dc offset 0.05" else audio * np.float32(10 ** (-30 / 20))
        assert verdict(run(processor, altered)) == verdict(run(processor, audio)), path.name


def test_a_dc_offset_does_not_move_the_level(processor: StreamProcessor) -> None:
    audio = load_audio(fixture_clips()[0], RATE)
    plain = [r.level_db for r in run(processor, audio)]
    offset = [r.level_db for r in run(processor, audio + np.float32(0.05))]
    np.testing.assert_allclose(offset[1:], plain[1:], atol=0.5)  # the first hop holds the filter's settling


def test_speech_windows_are_chosen_the_same_offline(classifier) -> None:  # noqa: ANN001
    """Training picks windows with the very same front end and rule as the app (one code path)."""
    cfg = classifier.features
    audio = np.concatenate([load_audio(p, RATE) for p in fixture_clips()[:3]])
    live = run(StreamProcessor(classifier, clip_settings(ProcessorSettings())), audio)
    clip = offline_front_end(audio, cfg, SpeechDetector())
    starts = range(0, len(clip.features) - cfg.frames_per_window + 1, cfg.frames_per_hop)
    offline = [clip.window(s, cfg) for s in starts]
    assert len(offline) == len(live)
    for result, window in zip(live, offline, strict=True):
        assert result.speech == window.is_speech(GateConfig())
    assert any(r.speech for r in live) and not all(r.speech for r in live)


def test_the_shipped_detector_gives_the_original_models_probabilities(classifier) -> None:  # noqa: ANN001
    """models/vad/ holds Silero's graph with its convolutions rewritten as MatMuls for speed
    (scripts/vad_matmul.py): the same sums in another order. On every fixture clip its
    probabilities stay within float32 rounding of the original's (tests/fixtures/vad_reference.npz)
    and no frame crosses the speech threshold."""
    reference = np.load(FIXTURES / "vad_reference.npz")
    threshold = GateConfig().frame_threshold
    detector = SpeechDetector()
    for name in reference.files:
        probs = offline_front_end(load_audio(FIXTURES / name, RATE), classifier.features, detector).frame_probs
        np.testing.assert_allclose(probs, reference[name], rtol=0, atol=5e-5, err_msg=name)
        assert np.array_equal(probs >= threshold, reference[name] >= threshold), name


def test_frame_probabilities_cover_the_stream(processor: StreamProcessor) -> None:
    """Every 32 ms VAD frame reaches the GUI exactly once, in the hop it completed in."""
    audio = load_audio(fixture_clips()[0], RATE)
    results = run(processor, audio)
    frames = np.concatenate([r.frame_probs for r in results])
    assert len(frames) == round(results[-1].t * RATE) // 512
    assert ((frames >= 0) & (frames <= 1)).all() and frames.max() > 0.9 and frames.min() < 0.1


def test_a_missing_or_corrupt_detector_is_a_clear_error(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ModelError, match="not found"):
        SpeechDetector(tmp_path / "nothing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="cannot load voice-activity model"):
        SpeechDetector(bad)


def test_a_burst_of_nan_input_does_not_poison_the_stream(processor: StreamProcessor) -> None:
    """Bad samples (a broken driver, a corrupt float file) cost their own windows, not the rest:
    the filter's and the detector's state recover."""
    audio = load_audio(fixture_clips()[4], RATE)
    bad = np.full(RATE // 2, np.nan, dtype=np.float32)
    results = run(processor, np.concatenate([bad, np.zeros(3 * RATE, np.float32), audio]))
    late = [r for r in results if r.t > 3.5 + 2.0]
    assert any(r.speech for r in late)
    clean = run(processor, np.concatenate([np.zeros(int(3.5 * RATE), np.float32), audio]))
    assert [r.speech for r in late] == [r.speech for r in clean if r.t > 3.5 + 2.0]
