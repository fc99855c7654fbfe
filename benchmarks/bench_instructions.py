"""Instructions a hop executes, counted by valgrind: a speed figure a noisy machine cannot move.

    python benchmarks/bench_instructions.py [--model PATH] [--hops N]

Clock time on a shared VM moves by a third from one minute to the next, more than most changes
to the code do; instruction counts move by well under 1%. Each figure is the difference between
two runs under ``valgrind --tool=cachegrind`` (``--hops`` more hops against a start-up run of 20),
so start-up, imports and model loading cancel out. Two ways of feeding the same speech:

* whole hops, as ``bench_pipeline.py``'s per-hop figure pushes them;
* 20 ms device blocks, as the live engine pushes a microphone's audio.

Instructions are not time (cache misses and memory stalls are not counted), so read them beside
``bench_pipeline.py``; for comparing two versions of the code they are the steadier measure.
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
START_HOPS = 20


def run_hops(model: Path, hops: int, block: int) -> None:
    """The measured work: ``hops`` hops of the speech track through a StreamProcessor."""
    from bench_pipeline import hop_blocks, speech_track

    from ser_live.model import EmotionClassifier
    from ser_live.processor import ProcessorSettings, StreamProcessor

    processor = StreamProcessor(EmotionClassifier(model, num_threads=1), ProcessorSettings())
    cfg = processor.cfg
    audio = speech_track(cfg.window_s + hops * cfg.hop_s, cfg.sample_rate_hz)
    processor.push(audio[: cfg.window_samples])
    for blocks in hop_blocks(audio, cfg, block):
        for piece in blocks:
            processor.push(piece)


def count(model: Path, hops: int, block: int) -> int:
    """Instructions of a whole run of ``hops`` hops under cachegrind."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--child", str(hops), str(block), "--model", str(model)],
        env=env, capture_output=True, text=True, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"error: valgrind run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    from ser_live.capture import DEVICE_BLOCK_S
    from ser_live.model import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--hops", type=int, default=60, help="hops counted beyond the start-up run")
    parser.add_argument("--child", nargs=2, type=int, metavar=("HOPS", "BLOCK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_hops(args.model, *args.child)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("error: valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from ser_live.model import EmotionClassifier

    cfg = EmotionClassifier(args.model).features
    results = {}
    for name, block in (("whole_hops", cfg.hop_samples), ("device_blocks", round(DEVICE_BLOCK_S * cfg.sample_rate_hz))):
        per_hop = (count(args.model, START_HOPS + args.hops, block) - count(args.model, START_HOPS, block)) / args.hops
        results[f"{name}_instructions_per_hop"] = round(per_hop)
    print(json.dumps({"model": str(args.model), "hops": args.hops, **results}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
