"""Speed and footprint of the live pipeline; prints figures for the README.

    python benchmarks/bench_pipeline.py [--model PATH] [--threads N] [--quick] [--low-power]

1. per hop: DC filter + features of one hop of new audio + voice-activity detector + gate + int8
   model + smoothing (StreamProcessor), median and 90th percentile over many hops; the CPU time
   of the same hops pushed in 20 ms device blocks, as the live engine pushes them; beside it a
   whole window from scratch (log-mel of 2 s + normalization + inference), the int8 model alone
   (with N interpreter threads) and the detector alone (one hop's 15-16 frames);
2. headless real-time streaming from a file: CPU % of one core and peak RSS of the process;
3. cold start: launch to first result (``--fast`` replay of a clip);
4. a 30-minute recording replayed with ``--fast``: RSS sampled along the way, windows processed.
Timings are medians: the machine is shared and noisy, so the per-hop and detector figures also
come as CPU time of the worker thread (``*_cpu_*``), which waiting for a busy core does not
inflate. With --low-power every figure is for the app's --low-power setting (a longer hop).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the ser-live command runs (ser_live/__init__.py)

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import soundfile  # noqa: E402

from ser_live.adaptation import SessionNormalizer  # noqa: E402
from ser_live.audio_io import load_audio  # noqa: E402
from ser_live.capture import DEVICE_BLOCK_S  # noqa: E402
from ser_live.config import FeatureConfig  # noqa: E402
from ser_live.features import offline_features  # noqa: E402
from ser_live.model import EmotionClassifier, default_model_path  # noqa: E402
from ser_live.processor import LOW_POWER_HOP_S, ProcessorSettings, StreamProcessor  # noqa: E402
from ser_live.vad import SpeechDetector  # noqa: E402

T = TypeVar("T")
CLIPS = sorted((REPO / "tests" / "fixtures").rglob("*.flac"))


def speech_track(seconds: float, rate_hz: int) -> np.ndarray:
    """The fixture clips back to back (each ends in its own silence), repeated to length."""
    clips = np.concatenate([load_audio(p, rate_hz) for p in CLIPS])
    reps = int(np.ceil(seconds * rate_hz / len(clips)))
    return np.tile(clips, reps)[: round(seconds * rate_hz)]


def hop_blocks(audio: np.ndarray, cfg: FeatureConfig, block: int) -> Iterator[list[np.ndarray]]:
    """Each hop after the first window of ``audio``, as the blocks of ``block`` samples a source pushes."""
    for start in range(cfg.window_samples, len(audio) - cfg.hop_samples + 1, cfg.hop_samples):
        end = start + cfg.hop_samples
        yield [audio[at : min(at + block, end)] for at in range(start, end, block)]


def _timed(fn: Callable[..., T], *args: object) -> tuple[T, float, float]:
    """``fn(*args)`` with its wall time and this thread's CPU time, in ms. CPU time is what the
    work costs; on a busy machine wall time also counts the waits for a core."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn(*args)
    return result, (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def bench_hop(model: Path, hops: int, hop_s: float | None, threads: int) -> dict[str, float]:
    classifier = EmotionClassifier(model, num_threads=threads)
    processor = StreamProcessor(classifier, ProcessorSettings(hop_s=hop_s))
    cfg = processor.cfg
    audio = speech_track(cfg.window_s + hops * cfg.hop_s, cfg.sample_rate_hz)
    processor.push(audio[: cfg.window_samples])
    per_hop, hop_cpu, speech_hop, from_scratch = [], [], [], []
    normalizer = SessionNormalizer(cfg, classifier.metadata.adaptation, cfg.hop_s)  # the model's own normalization
    for start in range(cfg.window_samples, len(audio) - cfg.hop_samples + 1, cfg.hop_samples):
        (result,), elapsed, cpu = _timed(processor.push, audio[start : start + cfg.hop_samples])
        per_hop.append(elapsed)
        hop_cpu.append(cpu)
        if result.speech:
            speech_hop.append(elapsed)
        chunk = audio[start + cfg.hop_samples - cfg.window_samples : start + cfg.hop_samples]
        t0 = time.perf_counter()
        classifier.predict(normalizer.normalize(offline_features(chunk, cfg).logmel[: cfg.frames_per_window]))
        from_scratch.append((time.perf_counter() - t0) * 1000)
    window = normalizer.normalize(offline_features(audio[: cfg.window_samples], cfg).logmel)
    model_ms = []
    for _ in range(200):
        t0 = time.perf_counter()
        classifier.predict(window)
        model_ms.append((time.perf_counter() - t0) * 1000)
    # the live engine pushes 20 ms device blocks, not whole hops: the same hops that way
    live = StreamProcessor(classifier, ProcessorSettings(hop_s=hop_s))
    live.push(audio[: cfg.window_samples])
    live_cpu = []
    for blocks in hop_blocks(audio, cfg, round(DEVICE_BLOCK_S * cfg.sample_rate_hz)):
        cpu = time.thread_time()
        for block in blocks:
            live.push(block)
        live_cpu.append((time.thread_time() - cpu) * 1000)
    detector = SpeechDetector()
    vad_ms, vad_cpu = [], []
    for start in range(0, len(audio) - cfg.hop_samples + 1, cfg.hop_samples):
        detector.push(audio[start : start + cfg.hop_samples])
        _, elapsed, cpu = _timed(detector.run)
        vad_ms.append(elapsed)
        vad_cpu.append(cpu)
    return {
        "hop_median_ms": statistics.median(per_hop),
        "hop_p90_ms": float(np.percentile(per_hop, 90)),
        "hop_cpu_median_ms": statistics.median(hop_cpu),
        "speech_hop_median_ms": statistics.median(speech_hop),
        "hop_in_device_blocks_cpu_median_ms": statistics.median(live_cpu),
        "window_from_scratch_median_ms": statistics.median(from_scratch),
        "model_only_median_ms": statistics.median(model_ms),
        "vad_only_median_ms": statistics.median(vad_ms),
        "vad_only_cpu_median_ms": statistics.median(vad_cpu),
        "hops": len(per_hop),
    }


CLI_OPTIONS: list[str] = []  # --low-power adds itself here, for every run of the app


def _cli(model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ser_live", "--model", str(model), "--headless", *CLI_OPTIONS, *args]


def bench_realtime(model: Path, wav: Path, seconds: float) -> dict[str, float]:
    proc = psutil.Popen(_cli(model, "--input", str(wav), "--duration", str(seconds)),
                        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # skip start-up (imports, model load): we measure the steady state
    cpu0, t0 = proc.cpu_times(), time.monotonic()
    rss = []
    while proc.poll() is None:
        try:
            cpu1, t1 = proc.cpu_times(), time.monotonic()
            rss.append(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)
    busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {"cpu_percent_of_one_core": 100 * busy / (t1 - t0), "peak_rss_mb": max(rss) / 2**20,
            "measured_s": t1 - t0}


def bench_cold_start(model: Path, clip: Path, runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.Popen(_cli(model, "--input", str(clip), "--fast"), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()
        times.append(time.monotonic() - t0)
        proc.communicate()
    return {"cold_start_median_s": statistics.median(times), "runs": runs}


def bench_long_replay(model: Path, wav: Path, seconds: float, cfg_window_s: float, hop_s: float) -> dict[str, object]:
    proc = psutil.Popen(_cli(model, "--input", str(wav), "--fast"), cwd=REPO,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    expected = int((seconds - cfg_window_s) / hop_s) + 1
    every = max(1, expected // 100)
    rss, windows = [], 0
    t0 = time.monotonic()
    for _line in proc.stdout:
        windows += 1
        if windows % every == 0:
            rss.append(proc.memory_info().rss / 2**20)
    proc.wait()
    return {"windows": windows, "expected_windows": expected, "wall_s": time.monotonic() - t0,
            "rss_mb_first_quarter": statistics.median(rss[: len(rss) // 4]),
            "rss_mb_last_quarter": statistics.median(rss[-len(rss) // 4 :]), "rss_samples": len(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads for the per-hop figures")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the script)")
    parser.add_argument("--low-power", action="store_true", help=f"the app's --low-power: {LOW_POWER_HOP_S:g} s hop")
    args = parser.parse_args()
    hop_s = LOW_POWER_HOP_S if args.low_power else None
    if args.low_power:
        CLI_OPTIONS.append("--low-power")
    cfg = EmotionClassifier(args.model).features.with_timing(hop_s=hop_s)
    quick = args.quick
    results: dict[str, object] = {"hop": bench_hop(args.model, 100 if quick else 1000, hop_s, args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        rt_s = 10.0 if quick else 60.0
        rt_wav = Path(tmp) / "realtime.wav"
        soundfile.write(rt_wav, speech_track(rt_s, cfg.sample_rate_hz), cfg.sample_rate_hz)
        results["realtime"] = bench_realtime(args.model, rt_wav, rt_s)
        results["cold_start"] = bench_cold_start(args.model, CLIPS[0], 3 if quick else 7)
        long_s = 120.0 if quick else 1800.0
        long_wav = Path(tmp) / "long.wav"
        soundfile.write(long_wav, speech_track(long_s, cfg.sample_rate_hz), cfg.sample_rate_hz)
        results["long_replay"] = bench_long_replay(args.model, long_wav, long_s, cfg.window_s, cfg.hop_s)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
