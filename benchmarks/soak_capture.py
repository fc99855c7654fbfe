"""Soak: real-time capture for a long time through a PulseAudio null sink, with the sound
server restarted mid-way; prints figures for the README.

    python benchmarks/soak_capture.py [--minutes 30] [--restarts 2] [--model PATH]

A private PulseAudio server (tests/pulse.py) and X server (tests/xvfb.py) are started. Two
ser-live processes capture from the sink's monitor the whole time: the desktop app (``--device
pulse`` under Xvfb) and ``--headless``. A fixture clip is played into the sink every
PLAY_EVERY_S so there is speech to classify. At evenly spaced moments the sound server is
killed and started again after SERVER_DOWN_S. Expected, and checked at the end:
- the app says each loss in one line (``ser-live: input lost: ...``) and picks the device up
  again (``ser-live: capturing again: ...``) each time, without a restart;
- headless ends each loss with one ``ser-live: error:`` line and exit status 2 (it is
  started again once the server is back, as a service manager would);
- no traceback and no library noise on either stderr;
- the app's RSS stays flat (median of the first and last quarter of the samples), also from
  one loss to the next (its RSS just before each loss, and at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from ser_live.model import default_model_path  # noqa: E402
from tests.pulse import PulseServer  # noqa: E402
from tests.xvfb import start_xvfb  # noqa: E402

PLAY_EVERY_S = 20.0
SERVER_DOWN_S = 5.0
RSS_EVERY_S = 5.0
RSS_BUCKET_S = 300.0  # the RSS trend is printed as the median of each 5 minutes
CLIP = sorted((REPO / "tests" / "fixtures").rglob("*.flac"))[4]


class Capture:
    """One ser-live process, its stderr collected line by line on a thread."""

    def __init__(self, args: list[str], env: dict[str, str], stdout: int | None = subprocess.DEVNULL) -> None:
        self.proc = psutil.Popen([sys.executable, "-m", "ser_live", *args], cwd=REPO, env=env, text=True,
                                 stdout=stdout, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def finish(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return int(code)


def _bucket_medians(times_s: list[float], values: list[float], bucket_s: float) -> list[float]:
    """The median of the values in each ``bucket_s`` of time, in order: a trend, robust to spikes."""
    buckets: dict[int, list[float]] = {}
    for t, value in zip(times_s, values, strict=True):
        buckets.setdefault(int(t // bucket_s), []).append(value)
    return [round(statistics.median(buckets[k]), 1) for k in sorted(buckets)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--model", type=Path, default=default_model_path())
    args = parser.parse_args()
    total_s = args.minutes * 60
    restart_at = [total_s * (i + 1) / (args.restarts + 1) for i in range(args.restarts)]
    with tempfile.TemporaryDirectory() as tmp:
        server = PulseServer(Path(tmp) / "pulse")
        server.start()
        xvfb, display = start_xvfb()
        env = {k: v for k, v in server.env.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
        env["PULSE_SERVER"] = server.env["PULSE_RUNTIME_PATH"] + "/native"
        gui_env = {**env, "DISPLAY": display, "XDG_CONFIG_HOME": str(Path(tmp) / "config")}
        model = ["--model", str(args.model)]
        gui = Capture([*model, "--device", "pulse"], gui_env)
        headless_runs: list[Capture] = [Capture([*model, "--headless", "--device", "pulse"], env)]
        headless_exits: list[int] = []
        rss_mb: list[float] = []
        rss_at_s: list[float] = []
        rss_before_losses: list[float] = []  # MB just before each loss, and at the end: what a reconnect added
        started = time.monotonic()
        next_play = next_rss = 0.0
        pending = list(restart_at)
        try:
            while (now := time.monotonic() - started) < total_s:
                if pending and now >= pending[0]:
                    pending.pop(0)
                    rss_before_losses.append(round(gui.proc.memory_info().rss / 2**20, 1))
                    print(f"{now / 60:5.1f} min: sound server killed", flush=True)
                    server.kill()
                    time.sleep(SERVER_DOWN_S)
                    server.start()
                    print(f"{(time.monotonic() - started) / 60:5.1f} min: sound server back", flush=True)
                if headless_runs[-1].proc.poll() is not None:  # ended by a loss: start it again, as systemd would
                    headless_exits.append(headless_runs[-1].finish())
                    headless_runs.append(Capture([*model, "--headless", "--device", "pulse"], env))
                if now >= next_play:
                    subprocess.Popen(["paplay", str(CLIP)], env=server.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
                    next_play = now + PLAY_EVERY_S
                if now >= next_rss:
                    rss_mb.append(gui.proc.memory_info().rss / 2**20)
                    rss_at_s.append(now)
                    next_rss = now + RSS_EVERY_S
                time.sleep(0.5)
            rss_before_losses.append(round(gui.proc.memory_info().rss / 2**20, 1))
        finally:
            gui_exit = gui.finish()
            headless_exits.append(headless_runs[-1].finish())
            server.kill()
            xvfb.terminate()
            xvfb.wait(timeout=10)
    quarter = max(1, len(rss_mb) // 4)
    gui_lines = gui.lines
    headless_lines = [line for run in headless_runs for line in run.lines]
    foreign = [line for line in gui_lines + headless_lines if not line.startswith("ser-live")]
    figures = {
        "minutes": args.minutes,
        "server_restarts": args.restarts,
        "gui_input_lost_lines": sum(line.startswith("ser-live: input lost") for line in gui_lines),
        "gui_capturing_again_lines": sum(line.startswith("ser-live: capturing again") for line in gui_lines),
        "gui_exit": gui_exit,
        "gui_rss_mb_first_quarter": round(statistics.median(rss_mb[:quarter]), 1),
        "gui_rss_mb_last_quarter": round(statistics.median(rss_mb[-quarter:]), 1),
        "gui_rss_mb_max": round(max(rss_mb), 1),
        "gui_rss_mb_median_by_5_min": _bucket_medians(rss_at_s, rss_mb, RSS_BUCKET_S),
        "gui_rss_mb_before_each_loss_and_at_end": rss_before_losses,
        "rss_samples": len(rss_mb),
        "headless_runs": len(headless_runs),
        "headless_exits": headless_exits,
        "headless_error_lines": [line for line in headless_lines if line.startswith("ser-live: error:")],
        "tracebacks": sum("Traceback" in line for line in gui_lines + headless_lines),
        "foreign_stderr_lines": foreign[:10],
    }
    print(json.dumps(figures, indent=2))
    ok = (figures["gui_input_lost_lines"] == figures["gui_capturing_again_lines"] == args.restarts
          and not foreign and headless_exits.count(2) == args.restarts)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
