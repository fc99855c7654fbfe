"""The desktop app as a person meets it: a real window under Xvfb replays the demo clip and
saves a screenshot; without a display the app exits with one line pointing to --headless."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtGui

from tests.conftest import REPO, only_our_lines, run_cli
from tests.xvfb import running_xvfb

DEMO = REPO / "assets" / "demo" / "ser-live-demo.flac"
IDLE_TEXT = "\u2014"
DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


def env_without_display(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DISPLAY_VARS}
    return {**env, **extra}


def run_app(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # run_cli merges into os.environ; the display variables must be absent, so pass the whole env
    return subprocess.run([sys.executable, "-m", "ser_live", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A private X server on a free display."""
    with running_xvfb() as display:
        yield display


def grey_pixels(path: Path) -> np.ndarray:
    image = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    assert not image.isNull()
    bits = image.constBits()
    assert bits is not None
    bits.setsize(image.sizeInBytes())
    rows = np.frombuffer(bits, dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width()].copy()


def region(pixels: np.ndarray, rect: list[int]) -> np.ndarray:
    x, y, w, h = rect
    return pixels[y : y + h, x : x + w]


@pytest.mark.slow
def test_screenshot_of_a_replay_under_xvfb(xvfb: str, model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    proc = run_app(
        ["--model", str(model_path), "--input", str(DEMO), "--screenshot", str(out), "--duration", "6"],
        env_without_display(DISPLAY=xvfb),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["saved"] and out.is_file()
    assert summary["label"] != IDLE_TEXT  # the emotion label left its idle state
    # 2.0 .. 6.0 s, every 0.5 s (a machine too busy to keep up skips hops rather than lag)
    assert summary["windows"] + summary["skipped_hops"] == 9 and summary["speech_windows"] > 0
    pixels = grey_pixels(out)
    for name in ("waveform", "probabilities", "emotion"):
        area = region(pixels, summary["regions"][name])
        assert area.size and area.std() > 10, f"the {name} area of the screenshot is blank"
        # drawn content, not just a background: a good share of pixels differ from the commonest one
        values, counts = np.unique(area, return_counts=True)
        assert counts.max() < 0.97 * area.size, f"the {name} area holds almost one colour"


def test_no_display_exits_with_one_line_pointing_to_headless(model_path: Path) -> None:
    proc = run_app(["--model", str(model_path)], env_without_display(), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--headless" in lines[0] and lines[0].startswith("ser-live: error:"), proc.stderr
    assert proc.stdout == ""


def test_unreachable_display_exits_with_one_line(model_path: Path) -> None:
    proc = run_app(["--model", str(model_path)], env_without_display(DISPLAY=":987"), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--headless" in lines[0] and ":987" in lines[0], proc.stderr


def test_screenshot_needs_an_input(model_path: Path, tmp_path: Path) -> None:
    proc = run_cli("--model", str(model_path), "--screenshot", str(tmp_path / "x.png"),
                   env={"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2 and "--input" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_corrupt_model_launched_from_a_menu_shows_a_message_box(xvfb: str, model_path: Path, tmp_path: Path) -> None:
    """A desktop launch has no terminal (stderr is not a tty here either): the error that stops
    the app appears in a window as well as in the one line on stderr; SIGTERM closes it."""
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    shutil.copy(model_path.with_suffix(".json"), bad.with_suffix(".json"))
    env = env_without_display(DISPLAY=xvfb)
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--model", str(bad)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while '"ser-live"' not in subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True,
                                                 text=True).stdout:
            assert proc.poll() is None and time.monotonic() < deadline, "no message box appeared"
            time.sleep(0.2)
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()  # reaped and its pipes closed, also when the test failed
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-live: error:") and "not a valid TFLite" in lines[0], stderr


@pytest.mark.slow
def test_a_normal_exit_after_a_resampled_replay_leaves_no_leak_messages(xvfb: str, model_path: Path,
                                                                        tmp_path: Path) -> None:
    """The app ends by itself after replaying a 44.1 kHz clip (resampled in the worker): its
    stderr holds only ser-live's own lines, no "nanobind: leaked ... soxr" at exit."""
    import soundfile
    import soxr

    audio, rate = soundfile.read(str(DEMO), dtype="float32")
    clip = tmp_path / "demo-44k.wav"
    soundfile.write(clip, soxr.resample(audio, rate, 44100), 44100)
    proc = run_app(["--model", str(model_path), "--input", str(clip), "--screenshot", str(tmp_path / "out.png"),
                    "--duration", "4"], env_without_display(DISPLAY=xvfb))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["saved"]
    only_our_lines(proc.stderr)


WATCH_WINDOW = """
import sys
from ser_live.cli import main
import ser_live.gui.window as window_module

class Watched(window_module.MainWindow):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.destroyed.connect(lambda: print("window destroyed", flush=True))

window_module.MainWindow = Watched
status = main(sys.argv[1:])
print("main returned", status, flush=True)
"""


@pytest.mark.slow
def test_the_window_is_destroyed_before_the_app_returns(xvfb: str, model_path: Path, tmp_path: Path) -> None:
    """Its Qt objects go while every module is whole, not during interpreter shutdown, where
    destroying them now and then crashed a run that had ended well (exit -11)."""
    proc = subprocess.run([sys.executable, "-c", WATCH_WINDOW, "--model", str(model_path), "--input", str(DEMO),
                           "--screenshot", str(tmp_path / "out.png"), "--duration", "1"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env_without_display(DISPLAY=xvfb))
    assert proc.returncode == 0, proc.stderr
    events = [line for line in proc.stdout.splitlines() if not line.startswith("{")]
    assert events == ["window destroyed", "main returned 0"], proc.stdout


RECORD_FROM_THE_START = """
import sys
from pathlib import Path
from ser_live.cli import main
import ser_live.gui.window as window_module

take = Path(sys.argv.pop())


class Recording(window_module.MainWindow):
    def start_source(self, *args, **kwargs):
        started = super().start_source(*args, **kwargs)
        assert self.start_recording(take)  # as if the user pressed Record at once
        return started

window_module.MainWindow = Recording
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_closing_the_terminal_closes_a_recording_cleanly(xvfb: str, model_path: Path, tmp_path: Path) -> None:
    """The app was started from a terminal, the user records, the terminal is closed (SIGHUP):
    the window closes as on Ctrl-C, and the recording and its timeline are complete files."""
    wav = tmp_path / "take.wav"
    proc = subprocess.Popen([sys.executable, "-c", RECORD_FROM_THE_START, "--model", str(model_path),
                             "--input", str(DEMO), str(wav)], cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_without_display(DISPLAY=xvfb),
                            # as from a terminal, even when the tests run under nohup
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not wav.with_suffix(".csv").exists() or len(wav.with_suffix(".csv").read_text().splitlines()) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "no recording came"
            time.sleep(0.1)
        proc.send_signal(signal.SIGHUP)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()  # reaped and its pipes closed, also when the test failed
    assert proc.returncode == 130, stderr
    only_our_lines(stderr)
    with wave.open(str(wav)) as reader:
        seconds = reader.getnframes() / reader.getframerate()
    rows = wav.with_suffix(".csv").read_text().splitlines()
    assert len(rows) >= 3 and seconds >= 2.0
    assert float(rows[-1].split(",")[0]) <= seconds  # the timeline ends inside the audio
