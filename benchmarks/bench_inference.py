"""Features + int8 inference per window, through the app's own EmotionClassifier; prints figures.

    python benchmarks/bench_inference.py [--model models/ser-cnn.tflite] [--hops 400] [--threads 1]

Measures, over the committed fixture clips played back to back:
- per hop (the live path): features of one hop of new audio (StreamingFeatures), window
  normalization and one int8 inference;
- per window from scratch: log-mel of a whole 2 s window + normalization + inference;
- the model alone.
Medians and 90th percentiles in milliseconds (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ser_live.audio_io import load_audio  # noqa: E402
from ser_live.features import StreamingFeatures, normalize_window, offline_features  # noqa: E402
from ser_live.model import EmotionClassifier, default_model_path  # noqa: E402


def _stats(ms: list[float]) -> str:
    return f"median {np.median(ms):.3f} ms, p90 {np.percentile(ms, 90):.3f} ms (n={len(ms)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--hops", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    clf = EmotionClassifier(args.model, num_threads=args.threads)
    cfg = clf.features
    clips = sorted((REPO / "tests" / "fixtures").rglob("*.flac"))
    audio = np.concatenate([load_audio(p, cfg.sample_rate_hz) for p in clips])
    need = cfg.window_samples + args.hops * cfg.hop_samples
    audio = np.tile(audio, int(np.ceil(need / len(audio))))[:need]

    stream = StreamingFeatures(cfg)
    stream.push(audio[: cfg.window_samples])
    clf.predict(normalize_window(stream.window().logmel, cfg))  # warm up
    per_hop, model_only, from_scratch = [], [], []
    for k in range(args.hops):
        start = cfg.window_samples + k * cfg.hop_samples
        t0 = time.perf_counter()
        stream.push(audio[start : start + cfg.hop_samples])
        window = normalize_window(stream.window().logmel, cfg)
        t1 = time.perf_counter()
        clf.predict(window)
        t2 = time.perf_counter()
        per_hop.append((t2 - t0) * 1000)
        model_only.append((t2 - t1) * 1000)
        t3 = time.perf_counter()
        chunk = audio[start - cfg.window_samples + cfg.hop_samples : start + cfg.hop_samples]
        clf.predict(normalize_window(offline_features(chunk, cfg).logmel[: cfg.frames_per_window], cfg))
        from_scratch.append((time.perf_counter() - t3) * 1000)
    print(f"model: {args.model} ({args.model.stat().st_size / 1024:.1f} KiB int8), threads {args.threads}")
    print(f"per hop, features + int8 inference (live path): {_stats(per_hop)}")
    print(f"per window from scratch, features + int8 inference: {_stats(from_scratch)}")
    print(f"int8 inference alone: {_stats(model_only)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
