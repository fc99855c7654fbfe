"""Shared fixtures: real clips committed under tests/fixtures, the shipped model, helpers to run the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ser_live`` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "ser_live", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """The promise for anything that goes wrong: exit status 2, no traceback, one error line
    that says what (``needles``)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("ser-live: error:",
                                                                             "ser-live analyze: error:"))]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def only_our_lines(stderr: str) -> None:
    """Every line on stderr is ser-live's own (no library noise, no traceback)."""
    foreign = [line for line in stderr.splitlines() if not line.startswith("ser-live:")]
    assert not foreign, stderr


def assert_same_verdicts(first: list, second: list, atol: float = 0.03) -> None:
    """Two runs over the same speech, the second altered in a way the model must not notice (30 dB
    quieter): the same windows judged, probabilities within ``atol``, and the same label wherever
    the top two are further apart than twice what moved. Two int8 output steps can be exactly
    equal, and then any rounding picks either; at most one window may be such a tie."""
    assert [r.speech for r in first] == [r.speech for r in second]
    judged = [(a, b) for a, b in zip(first, second, strict=True) if a.probs is not None]
    assert len(judged) >= 4
    decided = 0
    for a, b in judged:
        moved = max(abs(a.probs[k] - b.probs[k]) for k in a.probs)
        assert moved < atol, (a.t, moved)
        runner_up, top = sorted(a.probs.values())[-2:]
        if top - runner_up > 2 * moved:
            assert a.label == b.label, a.t
            decided += 1
    assert decided >= len(judged) - 1


def tone(freq_hz: float, seconds: float, rate_hz: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def fixture_clips() -> list[Path]:
    """The committed RAVDESS clips (see tests/fixtures/MANIFEST.md), sorted."""
    clips = sorted((FIXTURES / "ravdess").rglob("*.flac"))
    assert clips, "tests/fixtures holds no clips"
    return clips


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The shipped model, or another one named by SER_LIVE_TEST_MODEL to run the suite against it."""
    from ser_live.model import default_model_path

    return Path(os.environ.get("SER_LIVE_TEST_MODEL") or default_model_path())


@pytest.fixture(scope="session")
def classifier(model_path: Path):  # noqa: ANN201
    from ser_live.model import EmotionClassifier

    return EmotionClassifier(model_path)


def speech_moments(audio: list[np.ndarray], cfg):  # noqa: ANN001, ANN201
    """The speech windows' statistics of ``audio`` (clips of one session), as ``analyze`` learns them."""
    from ser_live.adaptation import SpeechMoments
    from ser_live.features import relative_features, window_starts
    from ser_live.frontend import offline_front_end
    from ser_live.gate import GateConfig
    from ser_live.vad import SpeechDetector

    moments = SpeechMoments.empty(cfg.n_features)
    for samples in audio:
        analysed = offline_front_end(samples, cfg, SpeechDetector())
        for start in window_starts(len(analysed.features), cfg):
            window = analysed.window(start, cfg)
            if window.is_speech(GateConfig()):
                moments.add(relative_features(window.features.logmel, cfg), cfg.hop_s)
    return moments


@pytest.fixture(scope="session")
def session_model(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """The shipped model if it adapts, else its weights with a session_cmvn JSON and a prior from
    the fixture clips: what the numbers mean does not matter here, only that every path computes
    the same ones."""
    meta = json.loads(model_path.with_suffix(".json").read_text())
    if meta["features"]["normalization"] == "session_cmvn":
        return model_path
    out = tmp_path_factory.mktemp("session") / "session.tflite"
    shutil.copy(model_path, out)
    meta["features"]["normalization"] = "session_cmvn"
    from ser_live.adaptation import AdaptationPrior
    from ser_live.audio_io import load_audio
    from ser_live.model import EmotionClassifier

    cfg = EmotionClassifier(model_path).features
    moments = speech_moments([load_audio(p, cfg.sample_rate_hz) for p in fixture_clips()], cfg)
    mean, square = moments.sum_mean / moments.weight_s, moments.sum_square / moments.weight_s
    meta["adaptation"] = AdaptationPrior(tuple(mean.tolist()), tuple(square.tolist())).to_dict()
    out.with_suffix(".json").write_text(json.dumps(meta))
    return out


@pytest.fixture
def pulse(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from tests.pulse import PulseServer

    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    server.start()
    yield server
    server.kill()
