"""Session adaptation: streaming equals offline for any chunking, files and folders, a new speaker,
gain invariance, the training simulation's arithmetic, and the metadata that carries the prior."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_live.adaptation import SessionNormalizer, blend
from ser_live.analyze import analyze_file, analyze_files, clip_settings
from ser_live.audio_io import load_audio
from ser_live.errors import ModelError
from ser_live.features import relative_features, window_starts
from ser_live.frontend import offline_front_end
from ser_live.gate import GateConfig
from ser_live.model import EmotionClassifier
from ser_live.processor import ProcessorSettings, StreamProcessor
from ser_live.vad import SpeechDetector
from tests.conftest import assert_same_verdicts, fixture_clips
from tests.conftest import speech_moments as _speech_moments

RAW = ProcessorSettings(smoothing_s=0.0)


@pytest.fixture(scope="module")
def adapting(session_model: Path) -> EmotionClassifier:
    return EmotionClassifier(session_model)


@pytest.fixture(scope="module")
def session(adapting: EmotionClassifier) -> np.ndarray:
    """Two actors' clips back to back: one stream in which the estimate moves."""
    return np.concatenate([load_audio(p, adapting.features.sample_rate_hz) for p in fixture_clips()[::3]])


def _probs(results: list) -> list[list[float] | None]:  # noqa: ANN001
    return [None if r.probs is None else list(r.probs.values()) for r in results]


@pytest.mark.parametrize("chunk", [160, 441, 8000, 23456])
def test_adapting_stream_is_the_same_for_any_chunking(adapting: EmotionClassifier, session: np.ndarray,
                                                      chunk: int) -> None:
    whole = StreamProcessor(adapting, RAW)
    expected = _probs(whole.push(session))
    chunked = StreamProcessor(adapting, RAW)
    got = []
    for start in range(0, len(session), chunk):
        got += chunked.push(session[start : start + chunk])
    assert _probs(got) == expected
    assert sum(p is not None for p in expected) >= 10


def test_adapting_stream_equals_offline_running_statistics(adapting: EmotionClassifier, session: np.ndarray) -> None:
    """The processor's verdicts are the offline windows normalized by a running estimate updated
    with each speech window before it is judged; the estimate warms up and reports it."""
    cfg = adapting.features
    results = StreamProcessor(adapting, RAW).push(session)
    analysed = offline_front_end(session, cfg, SpeechDetector())
    normalizer = SessionNormalizer(cfg, adapting.metadata.adaptation, cfg.hop_s)
    heard = []
    for result, start in zip(results, window_starts(len(analysed.features), cfg), strict=True):
        window = analysed.window(start, cfg)
        assert result.speech == window.is_speech(GateConfig())
        if result.speech:
            offline = adapting.predict(normalizer.normalize(window.features.logmel))
            np.testing.assert_allclose(list(result.probs.values()), offline, atol=1e-6)
        assert result.adapted_s == pytest.approx(normalizer.heard_s)
        heard.append(result.adapted_s)
    assert heard[-1] >= normalizer.warm_s == adapting.metadata.adaptation.warm_s


def test_new_speaker_forgets_the_voice_before_the_next_window(adapting: EmotionClassifier, session: np.ndarray) -> None:
    head, tail = session[: -adapting.features.hop_samples], session[-adapting.features.hop_samples :]
    processor = StreamProcessor(adapting, RAW)
    before = processor.push(head)[-1]
    processor.new_speaker()
    after = processor.push(tail)[-1]
    fresh = StreamProcessor(adapting, RAW)
    fresh.push(head)  # the same front-end state ...
    fresh.adapter.reset()  # ... and no voice heard
    expected = fresh.push(tail)[-1]
    assert after.speech
    assert before.adapted_s > 5
    assert after.adapted_s == expected.adapted_s == adapting.features.hop_s
    assert after.probs == expected.probs


def test_relative_features_and_so_adaptation_ignore_input_gain(adapting: EmotionClassifier,
                                                               session: np.ndarray) -> None:
    cfg = adapting.features
    loud = StreamProcessor(adapting, RAW).push(session)
    quiet = StreamProcessor(adapting, RAW).push((session * np.float32(10 ** (-30 / 20))).astype(np.float32))
    # the quiet input's faintest frames move a few int8 input codes by one step (0.03), which
    # moves a probability by less than 0.03
    assert_same_verdicts(loud, quiet)
    logmel = offline_front_end(session, cfg, SpeechDetector()).features.logmel[: cfg.frames_per_window]
    np.testing.assert_allclose(relative_features(logmel + np.log(1e-3), cfg), relative_features(logmel, cfg),
                               atol=1e-6)


def _file_adapted_inputs(adapting: EmotionClassifier, audio: np.ndarray) -> list[np.ndarray]:
    """The model input of each speech window of ``audio``, normalized by the file's own speech
    statistics: what ``--adapt-by file`` feeds the model, computed offline."""
    cfg = adapting.features
    normalizer = SessionNormalizer(cfg, adapting.metadata.adaptation, cfg.hop_s)
    normalizer.freeze(_speech_moments([audio], cfg))
    analysed = offline_front_end(audio, cfg, SpeechDetector())
    return [normalizer.normalize(analysed.window(s, cfg).features.logmel)
            for s in window_starts(len(analysed.features), cfg) if analysed.window(s, cfg).is_speech(GateConfig())]


def test_analyze_adapts_to_the_file_then_judges_it(adapting: EmotionClassifier) -> None:
    """``--adapt-by file``: the file's speech statistics first, then every window normalized by them."""
    path = fixture_clips()[4]
    report = analyze_file(path, StreamProcessor(adapting, clip_settings(RAW)), adapt_by="file")
    audio = load_audio(path, adapting.features.sample_rate_hz)
    probs = [adapting.predict(x) for x in _file_adapted_inputs(adapting, audio)]
    np.testing.assert_allclose(list(report.probs.values()), np.mean(probs, axis=0), atol=1e-5)


def test_analyze_by_folder_pools_the_folder_and_one_job_equals_two(adapting: EmotionClassifier) -> None:
    paths = fixture_clips()
    processor = StreamProcessor(adapting, clip_settings(RAW))
    by_folder = [r.to_record() for r in analyze_files(paths, processor, 1, adapt_by="folder")]
    assert by_folder == [r.to_record() for r in analyze_files(paths, processor, 2, adapt_by="folder")]
    by_file = [r.to_record() for r in analyze_files(paths, processor, 1, adapt_by="file")]
    assert by_folder != by_file  # a folder's eight clips are not each clip alone
    cfg = adapting.features
    folder = [p for p in paths if p.parent == paths[0].parent]
    moments = _speech_moments([load_audio(p, cfg.sample_rate_hz) for p in folder], cfg)
    direct = analyze_file(folder[0], processor, adapt_by="folder", speaker=moments)
    assert direct.to_record() == by_folder[0]


def test_training_blend_is_the_apps_arithmetic(adapting: EmotionClassifier, session: np.ndarray) -> None:
    """Training's simulated sessions blend summed moments with ``blend``; the app's frozen
    statistics (a file, a folder) are the same call."""
    cfg = adapting.features
    prior = adapting.metadata.adaptation
    moments = _speech_moments([session], cfg)
    mean, spread = blend(prior, moments.sum_mean[None], moments.sum_square[None], np.asarray([moments.weight_s]))
    app_mean, app_spread = moments.blended(prior)
    np.testing.assert_allclose(mean[0], app_mean)
    np.testing.assert_allclose(spread[0], app_spread)
    assert moments.weight_s > prior.prior_s  # the speaker outweighs the prior here


def test_a_session_model_without_its_prior_is_refused_by_name(session_model: Path, tmp_path: Path) -> None:
    meta = json.loads(session_model.with_suffix(".json").read_text())
    for change, needle in ((lambda m: m.pop("adaptation"), "'adaptation' is missing"),
                           (lambda m: m["adaptation"]["mean"].pop(), "'adaptation.mean' must have"),
                           (lambda m: m["adaptation"]["square"].__setitem__(0, "x"), "'adaptation.square'")):
        broken = json.loads(json.dumps(meta))
        change(broken)
        path = tmp_path / "broken.tflite"
        shutil.copy(session_model, path)
        path.with_suffix(".json").write_text(json.dumps(broken))
        with pytest.raises(ModelError, match=needle.replace("(", r"\(")):
            EmotionClassifier(path)


def test_training_evaluation_adapts_to_a_clip_as_analyze_does(adapting: EmotionClassifier) -> None:
    """``training.data.eval_windows`` (CV, locked test) normalizes each clip's windows by that clip's
    statistics: the verdicts ``ser-live analyze --adapt-by file`` gives."""
    from training.data import eval_windows

    cfg = adapting.features
    paths = fixture_clips()[:3]
    ev = eval_windows([load_audio(p, cfg.sample_rate_hz) for p in paths], cfg)
    inputs = ev.inputs(adapting.metadata.adaptation)
    processor = StreamProcessor(adapting, clip_settings(RAW))
    for clip, path in enumerate(paths):
        app = _file_adapted_inputs(adapting, load_audio(path, cfg.sample_rate_hz))
        mine = (ev.clip_index == clip) & ev.speech
        np.testing.assert_allclose(np.asarray(app).reshape(inputs[mine].shape), inputs[mine], atol=1e-5)
        # what the model sees is the same to float32 rounding (analyze's verdict is the app's windows
        # through the model: test_analyze_adapts_to_the_file_then_judges_it); through int8, a rounding
        # difference can move an input code that sits on a boundary by one step
        expected = np.mean([adapting.predict(w) for w in inputs[mine]], axis=0)
        report = analyze_file(path, processor, adapt_by="file")
        assert report.label == list(report.probs)[int(np.argmax(expected))]
        np.testing.assert_allclose(list(report.probs.values()), expected, atol=0.01)
